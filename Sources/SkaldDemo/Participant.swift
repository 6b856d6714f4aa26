import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import SkaldCore

/// A small service that takes part in sagas: inventory, payments or shipping.
///
/// Each honours `Idempotency-Key` (a repeated key gets the first answer, and the action is applied once),
/// keeps a ledger of the actions it applied, and can be told to reject, fail, be slow or hold requests,
/// through `faults` or `POST /_control`.
public final class Participant: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case inventory
        case payments
        case shipping
        case hotels
        case flights
        case cars

        /// The environment variable the example sagas read this participant's base URL from.
        public var environmentName: String { rawValue.uppercased() + "_URL" }
    }

    /// A card number that payments always declines (as test card numbers do at real payment providers).
    public static let decliningCard = "4000000000000002"
    /// The sku inventory never has: reserving it is refused with 409 out_of_stock.
    public static let soldOutSKU = "SKU-SOLD-OUT"

    public let kind: Kind
    let state = ParticipantState()

    public init(kind: Kind) {
        self.kind = kind
    }

    public func setFaults(_ faults: Faults) async { await state.setFaults(faults) }
    public var faults: Faults { get async { await state.faults } }
    public var ledger: [LedgerEntry] { get async { await state.ledger } }
    public var requestCount: Int { get async { await state.requestCount } }
    public var heldCount: Int { get async { await state.heldCount } }
    /// The W3C trace headers each request arrived with.
    public var traces: [ReceivedTrace] { get async { await state.traces } }
    /// Forward requests refused because their compensation arrived first.
    public var refusedAfterUndo: Int { get async { await state.refusedAfterUndo } }
    public func releaseHeld() async { await state.releaseHeld() }
    public func waitForHeld(count: Int = 1) async { await state.waitForHeld(count: count) }

    /// How many times the action for each idempotency key was applied.
    public var applicationsPerKey: [String: Int] {
        get async {
            var counts: [String: Int] = [:]
            for entry in await ledger { counts[entry.idempotencyKey ?? "(none)", default: 0] += 1 }
            return counts
        }
    }

    // MARK: - Routes

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in Self.json(200, ["status": "ok", "service": .string(self.kind.rawValue)]) }
        router.post("/_control") { request, _ in try await self.control(request) }
        router.get("/_ledger") { _, _ in
            let entries = await self.ledger.map { entry -> JSONValue in
                ["idempotencyKey": entry.idempotencyKey.map(JSONValue.string) ?? .null, "action": .string(entry.action), "resource": .string(entry.resource)]
            }
            let refused = await self.refusedAfterUndo
            return Self.json(200, ["entries": .array(entries), "refusedAfterCompensation": .int(Int64(refused))])
        }
        switch kind {
        case .inventory:
            router.post("/reservations") { request, _ in
                try await self.handle(request, action: "reserve", isCompensation: false) { body, resources, faults, _ in
                    guard let sku = body["sku"]?.stringValue, let quantity = body["quantity"]?.intValue, quantity > 0 else {
                        return (422, ["error": "invalid_request", "message": "sku (string) and quantity (positive integer) are required"], "")
                    }
                    if faults.reject || sku == Participant.soldOutSKU {
                        return (409, ["error": "out_of_stock", "message": "\(sku) is out of stock"], "")
                    }
                    let id = resources.newID(prefix: "res")
                    let reservation: JSONValue = ["id": .string(id), "sku": .string(sku), "quantity": .int(quantity), "status": "reserved"]
                    resources.items[id] = reservation
                    return (201, reservation, id)
                }
            }
            router.delete("/reservations/:id") { request, context in
                let id = context.parameters.get("id") ?? ""
                return try await self.handle(request, action: "release", isCompensation: true) { _, resources, _, _ in
                    Self.update(id, in: &resources, status: "released", noun: "reservation")
                }
            }
            undoByKey(router, .delete, "/reservations/by-key/:key", action: "release", status: "released", noun: "reservation")
        case .payments:
            router.post("/charges") { request, _ in
                try await self.handle(request, action: "charge", isCompensation: false) { body, resources, faults, _ in
                    guard let amount = body["amount"]?.doubleValue, amount > 0, let card = body["card"]?.stringValue else {
                        return (422, ["error": "invalid_request", "message": "amount (positive number) and card (string) are required"], "")
                    }
                    if faults.reject || card == Participant.decliningCard {
                        return (402, ["error": "card_declined", "message": "the card ending \(card.suffix(4)) was declined"], "")
                    }
                    let id = resources.newID(prefix: "ch")
                    let charge: JSONValue = [
                        "id": .string(id), "amount": body["amount"]!, "currency": body["currency"] ?? "EUR", "status": "captured",
                    ]
                    resources.items[id] = charge
                    return (201, charge, id)
                }
            }
            // A payment confirmed by webhook: accepted at once (202), then completed by a callback to `notify` from the
            // service's own task, as a payment provider does once the bank answers.
            router.post("/payments") { request, _ in
                try await self.handle(request, action: "pay", isCompensation: false) { body, resources, faults, _ in
                    guard let amount = body["amount"]?.doubleValue, amount > 0, let card = body["card"]?.stringValue,
                        let notify = body["notify"]?.stringValue
                    else {
                        return (422, ["error": "invalid_request", "message": "amount (positive number), card and notify (the callback URL) are required"], "")
                    }
                    let id = resources.newID(prefix: "pay")
                    let declined = faults.reject || card == Participant.decliningCard
                    resources.items[id] = ["id": .string(id), "amount": body["amount"]!, "status": declined ? "declined" : "captured"]
                    let result: JSONValue = declined
                        ? ["status": "failed", "error": .string("the card ending \(card.suffix(4)) was declined")]
                        : ["status": "succeeded", "output": ["paymentId": .string(id)]]
                    Task {
                        try? await Task.sleep(for: .milliseconds(300))
                        var callback = HTTPClientRequest(url: notify)
                        callback.method = .POST
                        callback.headers.add(name: "Content-Type", value: "application/json")
                        callback.body = .bytes(ByteBuffer(string: result.jsonText))
                        _ = try? await HTTPClient.shared.execute(callback, timeout: .seconds(10))
                    }
                    return (202, ["id": .string(id), "status": "pending"], id)
                }
            }
            undoByKey(router, .post, "/payments/by-key/:key/refund", action: "refund", status: "refunded", noun: "payment")
            // Money paid back to a card (a refund saga's payout): no charge of its own to refer to.
            router.post("/credits") { request, _ in
                try await self.handle(request, action: "credit", isCompensation: false) { body, resources, faults, _ in
                    guard let amount = body["amount"]?.doubleValue, amount > 0, body["card"]?.stringValue != nil else {
                        return (422, ["error": "invalid_request", "message": "amount (positive number) and card (string) are required"], "")
                    }
                    if faults.reject { return (422, ["error": "card_closed", "message": "the card cannot receive credits"], "") }
                    let id = resources.newID(prefix: "cr")
                    let credit: JSONValue = ["id": .string(id), "amount": body["amount"]!, "currency": body["currency"] ?? "EUR", "status": "credited"]
                    resources.items[id] = credit
                    return (201, credit, id)
                }
            }
            router.post("/charges/:id/refund") { request, context in
                let id = context.parameters.get("id") ?? ""
                return try await self.handle(request, action: "refund", isCompensation: true) { _, resources, _, _ in
                    Self.update(id, in: &resources, status: "refunded", noun: "charge")
                }
            }
            undoByKey(router, .post, "/charges/by-key/:key/refund", action: "refund", status: "refunded", noun: "charge")
        case .hotels, .flights, .cars:
            let prefix = ["hotels": "htl", "flights": "flt", "cars": "car"][kind.rawValue]!
            let noun = ["hotels": "room", "flights": "seat", "cars": "car"][kind.rawValue]!
            router.post("/bookings") { request, _ in
                try await self.handle(request, action: "book", isCompensation: false) { body, resources, faults, _ in
                    if faults.reject { return (409, ["error": "unavailable", "message": "no \(noun) is available for these dates"], "") }
                    let id = resources.newID(prefix: prefix)
                    let booking: JSONValue = ["id": .string(id), "status": "booked", "trip": body["tripId"] ?? .null]
                    resources.items[id] = booking
                    return (201, booking, id)
                }
            }
            router.delete("/bookings/:id") { request, context in
                let id = context.parameters.get("id") ?? ""
                return try await self.handle(request, action: "cancel", isCompensation: true) { _, resources, _, _ in
                    Self.update(id, in: &resources, status: "cancelled", noun: "booking")
                }
            }
            undoByKey(router, .delete, "/bookings/by-key/:key", action: "cancel", status: "cancelled", noun: "booking")
            router.post("/bookings/:id/confirm") { request, context in
                let id = context.parameters.get("id") ?? ""
                return try await self.handle(request, action: "confirm", isCompensation: false) { _, resources, _, _ in
                    Self.update(id, in: &resources, status: "confirmed", noun: "booking")
                }
            }
        case .shipping:
            router.post("/shipments") { request, _ in
                try await self.handle(request, action: "ship", isCompensation: false) { body, resources, faults, _ in
                    guard body["address"] != nil else {
                        return (422, ["error": "invalid_request", "message": "address is required"], "")
                    }
                    if faults.reject { return (422, ["error": "unserviceable", "message": "we do not ship to this address"], "") }
                    let id = resources.newID(prefix: "shp")
                    let shipment: JSONValue = [
                        "id": .string(id), "trackingNumber": .string("SK\(id.filter(\.isNumber))NL"), "status": "booked",
                    ]
                    resources.items[id] = shipment
                    return (201, shipment, id)
                }
            }
            router.delete("/shipments/:id") { request, context in
                let id = context.parameters.get("id") ?? ""
                return try await self.handle(request, action: "cancel", isCompensation: true) { _, resources, _, _ in
                    Self.update(id, in: &resources, status: "cancelled", noun: "shipment")
                }
            }
            undoByKey(router, .delete, "/shipments/by-key/:key", action: "cancel", status: "cancelled", noun: "shipment")
        }
        return router
    }

    /// A compensation that names the forward request it undoes by that request's idempotency key, so it works
    /// whether or not Skald ever saw the answer: it undoes what the request created, or, when nothing was applied
    /// (yet), answers 200 "nothing_to_undo" and refuses that request if it arrives later.
    private func undoByKey(
        _ router: Router<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: RouterPath, action: String, status: String, noun: String
    ) {
        router.on(path, method: method) { request, context in
            let key = context.parameters.get("key").map { $0.removingPercentEncoding ?? $0 } ?? ""
            return try await self.handle(request, action: action, isCompensation: true, undoing: key) { _, resources, _, created in
                Self.update(created ?? "", in: &resources, status: status, noun: noun)
            }
        }
    }

    static func update(_ id: String, in resources: inout Resources, status: String, noun: String) -> (status: Int, body: JSONValue, resource: String) {
        guard var item = resources.items[id]?.objectValue else {
            return (404, ["error": "not_found", "message": "no \(noun) \(id)"], "")
        }
        item["status"] = .string(status)
        resources.items[id] = .object(item)
        return (200, .object(item), id)
    }

    private func handle(
        _ request: Request, action: String, isCompensation: Bool, undoing forwardKey: String? = nil,
        apply: @escaping @Sendable (JSONValue, inout Resources, Faults, String?) -> (status: Int, body: JSONValue, resource: String)
    ) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let body: JSONValue
        if buffer.readableBytes == 0 {
            body = .object([:])
        } else if let parsed = try? JSONParser.parse(Array(buffer.readableBytesView), options: .init()).value {
            body = parsed
        } else {
            return Self.json(400, ["error": "malformed_json", "message": "the body is not JSON"])
        }
        let delay = await state.faults.delay
        if delay > .zero { try await Task.sleep(for: delay) }
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        await state.received(
            ReceivedTrace(
                idempotencyKey: key, attempt: request.headers[HTTPField.Name("Skald-Attempt")!].flatMap { Int($0) },
                traceparent: request.headers[HTTPField.Name("traceparent")!], tracestate: request.headers[HTTPField.Name("tracestate")!]))
        let answer = await state.answer(key: key, action: action, isCompensation: isCompensation, undoing: forwardKey) {
            resources, faults, created in
            apply(body, &resources, faults, created)
        }
        return Self.json(answer.status, answer.body)
    }

    private func control(_ request: Request) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 1 << 16)
        guard let body = try? JSONParser.parse(Array(buffer.readableBytesView), options: .init()).value, case .object(let fields) = body
        else {
            return Self.json(400, ["error": "malformed_json", "message": "send an object such as {\"failNext\": 2}"])
        }
        var faults = Faults()
        for (key, value) in fields {
            switch key {
            case "reject": faults.reject = value.boolValue ?? false
            case "failNext": faults.failNext = Int(value.intValue ?? 0)
            case "failCompensations": faults.failCompensations = value.boolValue ?? false
            case "hold": faults.hold = value.boolValue ?? false
            case "stall": faults.stall = value.boolValue ?? false
            case "delay": faults.delay = value.stringValue.flatMap(DurationText.parse) ?? .zero
            default:
                return Self.json(422, ["error": "unknown_field", "message": "unknown field \(key); use reject, failNext, failCompensations, hold, stall, delay"])
            }
        }
        await setFaults(faults)
        if !faults.hold && !faults.stall { await releaseHeld() }
        return Self.json(200, ["faults": .object(fields)])
    }

    static func json(_ status: Int, _ body: JSONValue) -> Response {
        Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body.jsonText)))
    }
}

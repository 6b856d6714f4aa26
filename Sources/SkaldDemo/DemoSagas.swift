import Foundation
import SkaldCore

/// The example sagas the demo runs: read from the Sagas folder when it is there, else the embedded copies.
public enum DemoSagas {
    public static let embedded: [String: String] = [
        "checkout.json": checkout, "trip.json": trip, "refund.json": refund, "payment-webhook.json": paymentWebhook,
        "order-items.json": orderItems,
    ]

    /// A definition's text with every timeout set to five minutes, for tests that hold a participant's answers: on a
    /// busy machine a held call can outlast the examples' one- and two-second timeouts and change the outcome.
    public static func withLongTimeouts(_ text: String) -> String {
        text.replacingOccurrences(of: #""timeout": "[0-9]+(ms|s)""#, with: #""timeout": "5m""#, options: .regularExpression)
    }

    /// The text of `name` from `folder`, or the embedded copy; and where it came from.
    public static func text(_ name: String, folder: String) -> (text: String, source: String)? {
        let path = (folder as NSString).appendingPathComponent(name)
        if let data = FileManager.default.contents(atPath: path) {
            return (String(decoding: data, as: UTF8.self), path)
        }
        return embedded[name].map { ($0, "embedded \(name)") }
    }

    /// An input for the trip saga.
    public static func tripInput(tripId: String, card: String = "4242424242424242") -> JSONValue {
        ["tripId": .string(tripId), "traveller": "Grace Hopper", "city": "Lisbon", "amount": 1280.0, "currency": "EUR", "card": .string(card)]
    }

    /// An input for the refund saga.
    public static func refundInput(orderId: String, amount: Double, reason: String) -> JSONValue {
        [
            "orderId": .string(orderId), "amount": .double(amount), "currency": "EUR", "card": "4242424242424242", "reason": .string(reason),
            "address": ["name": "Ada Lovelace", "street": "12 St James's Square", "city": "London", "country": "GB"],
        ]
    }

    /// An input for the order-items saga: its skus, two of each.
    public static func orderItemsInput(orderId: String, skus: [String]) -> JSONValue {
        [
            "orderId": .string(orderId), "items": .array(skus.map { ["sku": .string($0), "quantity": 2] }), "amount": 42.5, "currency": "EUR",
            "card": "4242424242424242",
        ]
    }

    /// An input for the checkout saga.
    public static func checkoutInput(orderId: String, card: String = "4242424242424242") -> JSONValue {
        [
            "orderId": .string(orderId), "sku": "BLUE-MUG", "quantity": 2, "amount": 24.5, "currency": "EUR", "card": .string(card),
            "address": ["name": "Ada Lovelace", "street": "12 St James's Square", "city": "London", "country": "GB"],
        ]
    }
}

extension DemoSagas {
    /// `Sagas/checkout.json`, embedded in the binary, for when the demo runs away from the repository.
    public static let checkout = String(decoding: PackageResources.checkout_json, as: UTF8.self).trimmingCharacters(in: .newlines)
    /// `Sagas/trip.json`, embedded likewise.
    public static let trip = String(decoding: PackageResources.trip_json, as: UTF8.self).trimmingCharacters(in: .newlines)
    /// `Sagas/payment-webhook.json`, embedded likewise.
    public static let paymentWebhook = String(decoding: PackageResources.payment_webhook_json, as: UTF8.self).trimmingCharacters(in: .newlines)
    /// `Sagas/order-items.json`, embedded likewise.
    public static let orderItems = String(decoding: PackageResources.order_items_json, as: UTF8.self).trimmingCharacters(in: .newlines)
    /// `Sagas/refund.json`, embedded likewise.
    public static let refund = String(decoding: PackageResources.refund_json, as: UTF8.self).trimmingCharacters(in: .newlines)
}

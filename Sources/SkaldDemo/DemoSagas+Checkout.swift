extension DemoSagas {
    /// The same text as Sagas/checkout.json (a test keeps the two equal), for when the demo runs away from the repository.
    public static let checkout = #"""
{
  "$schema": "./schema/saga.schema.json",
  "name": "checkout",
  "version": 1,
  "description": "Reserve stock, charge the card, book shipping; when a step fails for good, undo the completed ones in reverse.",
  "defaults": {
    "timeout": "2s",
    "retry": { "maxAttempts": 4, "initialInterval": "200ms", "backoffCoefficient": 2, "maxInterval": "2s", "jitter": "full" },
    "compensationRetry": { "maxAttempts": 5, "initialInterval": "200ms", "backoffCoefficient": 2, "maxInterval": "2s", "jitter": "full" }
  },
  "inputSchema": {
    "type": "object",
    "required": ["orderId", "sku", "quantity", "amount", "currency", "card", "address"],
    "properties": {
      "orderId": { "type": "string", "minLength": 1 },
      "sku": { "type": "string", "minLength": 1 },
      "quantity": { "type": "integer", "minimum": 1 },
      "amount": { "type": "number", "minimum": 0.01 },
      "currency": { "type": "string", "enum": ["EUR", "GBP", "USD"] },
      "card": { "type": "string", "minLength": 12, "writeOnly": true },
      "address": {
        "type": "object",
        "required": ["name", "city", "country"],
        "properties": {
          "name": { "type": "string" },
          "street": { "type": "string" },
          "city": { "type": "string" },
          "country": { "type": "string", "minLength": 2, "maxLength": 2 }
        }
      }
    }
  },
  "steps": [
    {
      "name": "reserve-stock",
      "request": {
        "method": "POST",
        "url": "{{env.INVENTORY_URL}}/reservations",
        "body": { "orderId": "{{input.orderId}}", "sku": "{{input.sku}}", "quantity": "{{input.quantity}}" }
      },
      "compensation": {
        "method": "DELETE",
        "url": "{{env.INVENTORY_URL}}/reservations/by-key/{{steps.reserve-stock.idempotencyKey}}"
      }
    },
    {
      "name": "charge-card",
      "request": {
        "method": "POST",
        "url": "{{env.PAYMENTS_URL}}/charges",
        "body": {
          "orderId": "{{input.orderId}}",
          "amount": "{{input.amount}}",
          "currency": "{{input.currency}}",
          "card": "{{input.card}}"
        }
      },
      "compensation": {
        "method": "POST",
        "url": "{{env.PAYMENTS_URL}}/charges/by-key/{{steps.charge-card.idempotencyKey}}/refund",
        "body": { "reason": "checkout {{input.orderId}} rolled back by run {{run.id}}" }
      }
    },
    {
      "name": "ship-order",
      "request": {
        "method": "POST",
        "url": "{{env.SHIPPING_URL}}/shipments",
        "timeout": "1s",
        "body": {
          "orderId": "{{input.orderId}}",
          "reservation": "{{steps.reserve-stock.response.body.id}}",
          "address": "{{input.address}}"
        }
      },
      "compensation": {
        "method": "DELETE",
        "url": "{{env.SHIPPING_URL}}/shipments/by-key/{{steps.ship-order.idempotencyKey}}"
      }
    }
  ]
}
"""#
}

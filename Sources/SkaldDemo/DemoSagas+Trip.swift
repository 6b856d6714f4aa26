extension DemoSagas {
    /// The same text as Sagas/trip.json (a test keeps the two equal), for when the demo runs away from the repository.
    public static let trip = #"""
{
  "$schema": "./schema/saga.schema.json",
  "name": "trip",
  "version": 1,
  "description": "Book a hotel, a flight and a car at the same time, then take the payment (the point of no return), then confirm the bookings.",
  "deadline": "2m",
  "defaults": {
    "timeout": "2s",
    "retry": { "maxAttempts": 3, "initialInterval": "200ms", "backoffCoefficient": 2, "maxInterval": "2s", "jitter": "full" },
    "compensationRetry": { "maxAttempts": 5, "initialInterval": "200ms", "backoffCoefficient": 2, "maxInterval": "2s", "jitter": "full" }
  },
  "inputSchema": {
    "type": "object",
    "required": ["tripId", "traveller", "city", "amount", "currency", "card"],
    "properties": {
      "tripId": { "type": "string", "minLength": 1 },
      "traveller": { "type": "string" },
      "city": { "type": "string" },
      "amount": { "type": "number", "minimum": 0.01 },
      "currency": { "type": "string", "enum": ["EUR", "GBP", "USD"] },
      "card": { "type": "string", "minLength": 12 }
    }
  },
  "steps": [
    {
      "name": "hotel",
      "dependsOn": [],
      "request": {
        "method": "POST",
        "url": "{{env.HOTELS_URL}}/bookings",
        "body": { "tripId": "{{input.tripId}}", "guest": "{{input.traveller}}", "city": "{{input.city}}" }
      },
      "compensation": { "method": "DELETE", "url": "{{env.HOTELS_URL}}/bookings/by-key/{{steps.hotel.idempotencyKey}}" }
    },
    {
      "name": "flight",
      "dependsOn": [],
      "request": {
        "method": "POST",
        "url": "{{env.FLIGHTS_URL}}/bookings",
        "body": { "tripId": "{{input.tripId}}", "passenger": "{{input.traveller}}", "to": "{{input.city}}" }
      },
      "compensation": { "method": "DELETE", "url": "{{env.FLIGHTS_URL}}/bookings/by-key/{{steps.flight.idempotencyKey}}" }
    },
    {
      "name": "car",
      "dependsOn": [],
      "request": {
        "method": "POST",
        "url": "{{env.CARS_URL}}/bookings",
        "body": { "tripId": "{{input.tripId}}", "driver": "{{input.traveller}}", "city": "{{input.city}}" },
        "retryOn": [409],
        "maxElapsed": "5s"
      },
      "compensation": { "method": "DELETE", "url": "{{env.CARS_URL}}/bookings/by-key/{{steps.car.idempotencyKey}}", "successStatus": ["2xx", 404] }
    },
    {
      "name": "payment",
      "dependsOn": ["hotel", "flight", "car"],
      "pivot": true,
      "request": {
        "method": "POST",
        "url": "{{env.PAYMENTS_URL}}/charges",
        "body": { "orderId": "{{input.tripId}}", "amount": "{{input.amount}}", "currency": "{{input.currency}}", "card": "{{input.card}}" }
      }
    },
    {
      "name": "confirm-hotel",
      "dependsOn": ["payment"],
      "request": { "method": "POST", "url": "{{env.HOTELS_URL}}/bookings/{{steps.hotel.response.body.id}}/confirm" }
    },
    {
      "name": "confirm-flight",
      "dependsOn": ["payment"],
      "request": { "method": "POST", "url": "{{env.FLIGHTS_URL}}/bookings/{{steps.flight.response.body.id}}/confirm" }
    }
  ]
}
"""#
}

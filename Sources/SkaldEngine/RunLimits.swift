/// The sizes the API accepts, kept in one place so that an import checks a run against the same limits as a start.
public enum RunLimits {
    /// A run's input, as JSON text.
    public static let maxInputBytes = 256 * 1024
    /// An idempotency key, in characters.
    public static let maxIdempotencyKeyLength = 255
    /// A definition document (the API's largest request body).
    public static let maxDefinitionBytes = 1 << 20
    /// A run id, in bytes: ids Skald makes are 26 characters; an imported one may be longer, up to this.
    public static let maxRunIDBytes = 255
}

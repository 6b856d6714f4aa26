public enum OpenAPIDocument {}

extension OpenAPIDocument {
    public static let text = String(decoding: PackageResources.openapi_json, as: UTF8.self).trimmingCharacters(in: .newlines)
}

public enum OpenAPIDocument {}

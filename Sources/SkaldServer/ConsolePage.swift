/// The web console: one page (HTML, CSS and JavaScript, nothing fetched from elsewhere) that reads the API.
public enum ConsolePage {}

/// The release this build is (`ringsfu --version`, `/health`).
public enum RingSFUVersion {
    public static let current = "0.9.0-dev"
}

public enum RingSFUVersion { public static let string = "0.1.0" }

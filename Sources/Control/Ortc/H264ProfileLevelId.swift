/// H.264 profile-level-id handling (RFC 6184 section 8.1): enough to tell
/// whether two codecs share a profile and to compute the level to answer.
struct H264ProfileLevelId: Equatable {
    enum Profile: Equatable {
        case constrainedBaseline, baseline, main, constrainedHigh, high, predictiveHigh444
    }

    var profile: Profile
    /// level_idc; 1b is represented as 0 (it sits between 1.0 and 1.1).
    var level: Int

    static let defaultString = "42e01f"

    /// (profile_idc, mask, value on profile_iop) -> profile, in the order
    /// RFC 6184 and common implementations check them.
    private static let patterns: [(UInt8, UInt8, UInt8, Profile)] = [
        (0x42, 0x4F, 0x40, .constrainedBaseline),
        (0x4D, 0x8F, 0x80, .constrainedBaseline),
        (0x58, 0xCF, 0xC0, .constrainedBaseline),
        (0x42, 0x4F, 0x00, .baseline),
        (0x58, 0xCF, 0x80, .baseline),
        (0x4D, 0xAF, 0x00, .main),
        (0x64, 0xFF, 0x00, .high),
        (0x64, 0xFF, 0x0C, .constrainedHigh),
        (0xF4, 0xFF, 0x00, .predictiveHigh444),
    ]

    init(profile: Profile, level: Int) {
        self.profile = profile
        self.level = level
    }

    init?(_ text: String) {
        guard text.count == 6, let v = UInt32(text, radix: 16) else { return nil }
        let idc = UInt8(v >> 16), iop = UInt8((v >> 8) & 0xFF), levelIdc = Int(v & 0xFF)
        guard let match = Self.patterns.first(where: { $0.0 == idc && iop & $0.1 == $0.2 }) else { return nil }
        profile = match.3
        // Level 1b: level_idc 11 with constraint_set3 for baseline-family profiles.
        if levelIdc == 11, iop & 0x10 != 0, [.constrainedBaseline, .baseline, .main].contains(match.3) {
            level = 0
        } else {
            level = levelIdc
        }
    }

    var string: String {
        let (idc, iop): (UInt8, UInt8) = switch profile {
        case .constrainedBaseline: (0x42, 0xE0)
        case .baseline: (0x42, 0x00)
        case .main: (0x4D, 0x00)
        case .constrainedHigh: (0x64, 0x0C)
        case .high: (0x64, 0x00)
        case .predictiveHigh444: (0xF4, 0x00)
        }
        if level == 0 {
            // 1b: level_idc 11 plus constraint_set3 where the profile allows it.
            return hex(idc) + hex(profile == .constrainedBaseline || profile == .baseline || profile == .main ? iop | 0x10 : iop) + hex(11)
        }
        return hex(idc) + hex(iop) + hex(UInt8(level))
    }

    private func hex(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return s.count == 1 ? "0" + s : s
    }

    static func parse(_ parameters: [String: ParameterValue]?) -> H264ProfileLevelId? {
        H264ProfileLevelId(parameters?["profile-level-id"]?.stringValue ?? defaultString)
    }

    static func sameProfile(_ a: [String: ParameterValue]?, _ b: [String: ParameterValue]?) -> Bool {
        guard let x = parse(a), let y = parse(b) else { return false }
        return x.profile == y.profile
    }


    /// The profile-level-id to answer `remote` (an offer) with `local`
    /// capabilities, or nil if their profiles differ.
    static func answer(local: [String: ParameterValue]?, remote: [String: ParameterValue]?) -> String?? {
        // Neither side named one: nothing to answer.
        if local?["profile-level-id"] == nil && remote?["profile-level-id"] == nil { return .some(nil) }
        guard let l = parse(local), let r = parse(remote), l.profile == r.profile else { return nil }
        let asymmetry = isAsymmetryAllowed(local) && isAsymmetryAllowed(remote)
        let level = asymmetry ? l.level : (lessLevel(l.level, r.level) ? l.level : r.level)
        return .some(H264ProfileLevelId(profile: r.profile, level: level).string)
    }

    /// Level order with 1b (0) between 1.0 (10) and 1.1 (11).
    static func lessLevel(_ a: Int, _ b: Int) -> Bool {
        func rank(_ x: Int) -> Double { x == 0 ? 10.5 : Double(x) }
        return rank(a) < rank(b)
    }

    private static func isAsymmetryAllowed(_ p: [String: ParameterValue]?) -> Bool {
        p?["level-asymmetry-allowed"]?.intValue == 1
    }
}

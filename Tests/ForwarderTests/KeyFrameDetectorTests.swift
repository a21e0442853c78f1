import Testing
@testable import RingSFUForwarder

/// Key frame detection per codec from RTP payloads, including short and
/// malformed ones (never a key frame, never a trap).
@Suite("Key frame detection")
struct KeyFrameDetectorTests {
    func key(_ codec: KeyFrameCodec, _ payload: [UInt8]) -> Bool {
        payload.withUnsafeBytes { KeyFrameDetector.isKeyFrame(codec, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: $0.count) }
    }

    @Test func h264() {
        #expect(key(.h264, [0x65, 0x88]))                    // IDR slice
        #expect(key(.h264, [0x67, 0x42]))                    // SPS
        #expect(!key(.h264, [0x41, 0x9A]))                   // non-IDR slice
        #expect(key(.h264, [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE])) // STAP-A with SPS
        #expect(!key(.h264, [0x78, 0, 2, 0x41, 0x9A]))       // STAP-A, non-IDR only
        #expect(!key(.h264, [0x78, 0, 9, 0x67]))             // STAP-A size past the end
        #expect(key(.h264, [0x7C, 0x85, 0x88]))              // FU-A start of IDR
        #expect(!key(.h264, [0x7C, 0x05, 0x88]))             // FU-A middle of IDR
        #expect(!key(.h264, [0x7C]) && !key(.h264, []))
    }

    @Test func h265() {
        #expect(key(.h265, [19 << 1, 1]))                    // IDR_W_RADL
        #expect(key(.h265, [33 << 1, 1]))                    // SPS
        #expect(!key(.h265, [1 << 1, 1]))                    // TRAIL_R
        #expect(key(.h265, [49 << 1, 1, 0x80 | 20, 0]))      // FU start, IDR_N_LP
        #expect(!key(.h265, [49 << 1, 1, 20, 0]))            // FU continuation
        #expect(key(.h265, [48 << 1, 1, 0, 2, 32 << 1, 1]))  // AP with a VPS
        #expect(!key(.h265, [48 << 1, 1, 0, 1, 32 << 1]))    // AP unit shorter than a NAL header
        #expect(!key(.h265, [19 << 1]))
    }

    @Test func vp9AndAv1() {
        #expect(key(.vp9, [0x08]))                           // B=1, P=0
        #expect(!key(.vp9, [0x48]))                          // inter-predicted
        #expect(!key(.vp9, [0x00]))                          // not the start of a frame
        #expect(key(.vp9, [0xA8, 0x81, 0x23, 0x00]))         // I (15-bit id), L, SID 0
        #expect(!key(.vp9, [0xA8, 0x05, 0x02]))              // SID 1
        #expect(!key(.vp9, [0xA8, 0x81]))                    // layer byte missing
        #expect(key(.av1, [0x18, 0x0A]))                     // N=1
        #expect(!key(.av1, [0x10, 0x0A]))                    // N=0
        #expect(!key(.av1, [0x98, 0x0A]))                    // continues an OBU
        #expect(!key(.av1, [0x18]))
        #expect(key(.vp8, [0x10, 0x00]) && !key(.vp8, [0x10, 0x01]))
    }
}

import CLibGit2
import Foundation

/// An author or committer, copied out of libgit2.
public struct Signature: Sendable, Hashable {
    public let name: String
    public let email: String
    public let time: Date
    /// The signer's offset from UTC, in minutes.
    public let offsetMinutes: Int

    public init(name: String, email: String, time: Date, offsetMinutes: Int = 0) {
        self.name = name
        self.email = email
        self.time = time
        self.offsetMinutes = offsetMinutes
    }

    init(_ signature: UnsafePointer<git_signature>, encoding: String? = nil) {
        let value = signature.pointee
        name = TextDecoding.decode([UInt8](cString: value.name), encoding: encoding)
        email = TextDecoding.decode([UInt8](cString: value.email), encoding: encoding)
        time = Date(timeIntervalSince1970: TimeInterval(value.when.time))
        offsetMinutes = Int(value.when.offset)
    }
}

extension String {
    /// Decodes a C string that should be UTF-8 but may not be: invalid bytes become U+FFFD rather than a crash.
    init(lenientCString pointer: UnsafePointer<CChar>?) {
        guard let pointer else {
            self = ""
            return
        }
        let length = strlen(pointer)
        self = pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }
}

extension Array where Element == UInt8 {
    init(cString pointer: UnsafePointer<CChar>?) {
        guard let pointer else {
            self = []
            return
        }
        let length = strlen(pointer)
        self = pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }
}

/// How long a network call may wait, over every transport (`ssh://`, `https://`, `http://`, `git://`).
///
/// There is no bound on a whole transfer, because a large first fetch may rightly take an hour; instead every wait is
/// bounded, as git's `http.lowSpeedTime` bounds a stalled transfer. A remote that accepts the connection and then
/// says nothing fails after `idle`; one that never accepts it fails after `connect`.
public struct NetworkTimeouts: Sendable, Equatable {
    /// The longest wait for a connection: TCP's handshake for `http(s)://` and `git://`, and `ssh`'s own
    /// `ConnectTimeout` (which also covers its key exchange) for `ssh://`.
    public var connect: Duration
    /// The longest wait for the next byte from the remote (or for room to send one), once connected. TLS handshakes,
    /// SSH authentication, the ref advertisement, negotiation and the pack itself all wait under this bound.
    public var idle: Duration

    /// Limits of at least a millisecond each; shorter ones count as a millisecond.
    public init(connect: Duration = .seconds(30), idle: Duration = .seconds(120)) {
        self.connect = connect
        self.idle = idle
    }

    /// 30 seconds to connect and 120 seconds of silence at most.
    public static let `default` = NetworkTimeouts()

    var connectMilliseconds: Int32 { Self.milliseconds(connect) }
    var idleMilliseconds: Int32 { Self.milliseconds(idle) }

    /// Whole seconds for `ssh -o ConnectTimeout`, at least one.
    var connectSeconds: Int { max(1, Int((Self.milliseconds(connect) + 999) / 1000)) }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        let total = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(1, total))
    }
}

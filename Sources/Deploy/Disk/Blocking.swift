import Dispatch

/// Blocking file-system work (removing a release tree, fsync, reading a log) runs on threads of its own rather than
/// on Swift's cooperative pool, which has only as many threads as the machine has cores.
enum Blocking {
    private static let queue = DispatchQueue(label: "slipway.blocking", qos: .utility, attributes: .concurrent)

    static func run<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(E) -> T in try work() }) }
        }
        return try result.get()
    }
}

import Glibc
import Synchronization

/// Gives the heap memory freed by a burst of work back to the system: asked for when the queue falls idle, and
/// when an event stream or a log download ends.
///
/// A burst (deployments at start-up, a log followed by many clients at once) allocates many small buffers on
/// several threads. When it ends, glibc keeps the freed pages in its arenas for reuse: the daemon's resident memory
/// stays near its peak although nothing holds it (a second burst reuses it, and grows nothing). A trim a moment
/// after the burst returns those pages. It is asked for at most once per `delay`, so many requests cost one trim.
public enum MemoryTrim {
    static let delay = Duration.seconds(2)
    private static let pending = Mutex(false)

    public static func soon() {
        let start = pending.withLock { pending -> Bool in
            defer { pending = true }
            return !pending
        }
        guard start else { return }
        Task.detached(priority: .background) {
            try? await Task.sleep(for: delay)
            pending.withLock { $0 = false }
            _ = trim?(0)
        }
    }

    /// glibc's `malloc_trim`, found at run time: Swift's Glibc module does not export `malloc.h`, and a C library
    /// without it (musl) then simply keeps its pages.
    private static let trim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()
}

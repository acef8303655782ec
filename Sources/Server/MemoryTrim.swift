import Glibc
import Synchronization

/// Gives the heap memory freed by a burst of event streams back to the system.
///
/// A log followed by many clients at once allocates many small buffers on the event loops' and the cooperative
/// pool's threads. When the streams end, glibc keeps the freed pages in its arenas for reuse: the daemon's resident
/// memory stays near its peak although nothing holds it (a second burst reuses it, and grows nothing). A trim a
/// moment after the streams end returns those pages. It is asked for at most once per `delay`, so a stream of
/// requests costs one trim, not one each.
enum MemoryTrim {
    static let delay = Duration.seconds(2)
    private static let pending = Mutex(false)

    static func soon() {
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

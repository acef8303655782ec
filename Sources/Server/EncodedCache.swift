import NIOCore
import Synchronization

/// One encoded response, valid for one generation of the data it was made from.
final class EncodedCache: Sendable {
    private let entry = Mutex<(generation: UInt64, bytes: ByteBuffer)?>(nil)

    func bytes(for generation: UInt64) -> ByteBuffer? {
        entry.withLock { $0?.generation == generation ? $0?.bytes : nil }
    }

    /// Stores `bytes` made from `generation`. Data newer than the request that made them may already exist; the
    /// generation then differs and the next request rebuilds.
    func store(_ bytes: ByteBuffer, for generation: UInt64) {
        entry.withLock { $0 = (generation, bytes) }
    }
}

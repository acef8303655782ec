import CLibGit2
import Foundation
import Synchronization

/// Reads objects out of a repository's packs for an export, resolving delta chains with a cache of every
/// intermediate result.
///
/// libgit2 1.5 caches only the base at the bottom of a chain, so each object at depth 18 (the average at the head of
/// a real pack) applies 18 deltas again; git's checkout keeps every base it made in its delta base cache and applies
/// each delta once. This reader does what git does, for blobs only, and gives up (the caller then asks libgit2) on
/// anything it does not expect: a base in another pack, an unknown type, a mismatch in sizes.
final class PackReader: @unchecked Sendable {
    // @unchecked: the mappings are read-only and immutable after init; the cache is behind its Mutex; cached
    // objects are immutable once made.

    /// An object's bytes, shared between the cache and the writers that use them.
    final class Object: @unchecked Sendable {
        // @unchecked: written once, before it is shared, then only read.
        let bytes: UnsafeMutableRawBufferPointer
        let count: Int

        init(count: Int) {
            self.count = count
            bytes = .allocate(byteCount: max(count, 1), alignment: 16)
        }

        deinit {
            bytes.deallocate()
        }

        /// The object's content.
        var content: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes.baseAddress, count: count) }
    }

    private struct Mapping {
        let base: UnsafeRawPointer
        let length: Int
    }

    private struct Cache {
        var objects: [UInt64: Object] = [:]
        var order: [UInt64] = []
        var head = 0
        var bytes = 0
    }

    private let index: PackIndex
    private let mappings: [Mapping?]
    /// Keyed by pack number and offset (`key(pack:offset:)`).
    private let cache = Mutex(Cache())
    /// git's `core.deltaBaseCacheLimit` is 96 MiB; a deploy host has other work to do.
    static let cacheLimit = 64 << 20

    init(index: PackIndex) {
        self.index = index
        mappings = index.packs.map { pack in
            var info = stat()
            guard fstat(pack.packDescriptor, &info) == 0, info.st_size > 0 else { return nil }
            let length = Int(info.st_size)
            guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, pack.packDescriptor, 0), mapped != MAP_FAILED
            else { return nil }
            return Mapping(base: UnsafeRawPointer(mapped), length: length)
        }
    }

    deinit {
        for mapping in mappings {
            if let mapping { munmap(UnsafeMutableRawPointer(mutating: mapping.base), mapping.length) }
        }
    }

    private struct Entry {
        let type: UInt8
        let size: Int
        /// Where the zlib data starts.
        let dataOffset: Int
        /// For a delta, the offset of its base in the same pack.
        let baseOffset: UInt64?
    }

    /// Reads the entry header at `offset`; nil for anything unexpected.
    private func entry(pack: Int, at offset: UInt64, _ mapping: Mapping) -> Entry? {
        var position = Int(offset)
        guard position < mapping.length - 20 else { return nil }
        var byte = mapping.base.load(fromByteOffset: position, as: UInt8.self)
        position += 1
        let type = (byte >> 4) & 7
        var size = Int(byte & 15)
        var shift = 4
        while byte & 0x80 != 0 {
            guard position < mapping.length, shift < 60 else { return nil }
            byte = mapping.base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            size |= Int(byte & 0x7f) << shift
            shift += 7
        }
        switch type {
        case 1, 2, 3, 4:
            return Entry(type: type, size: size, dataOffset: position, baseOffset: nil)
        case 6:  // OFS_DELTA: the base is this far back, in git's offset encoding
            guard position < mapping.length else { return nil }
            byte = mapping.base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            var distance = UInt64(byte & 0x7f)
            while byte & 0x80 != 0 {
                guard position < mapping.length, distance < (1 << 56) else { return nil }
                byte = mapping.base.load(fromByteOffset: position, as: UInt8.self)
                position += 1
                distance = ((distance + 1) << 7) | UInt64(byte & 0x7f)
            }
            guard distance > 0, distance <= offset else { return nil }
            return Entry(type: type, size: size, dataOffset: position, baseOffset: offset - distance)
        case 7:  // REF_DELTA: the base is named by id; only a base in this same pack is followed
            guard position + 20 <= mapping.length else { return nil }
            var oid = git_oid()
            withUnsafeMutableBytes(of: &oid.id) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: mapping.base + position, count: 20))
            }
            guard let base = index.packs[pack].offset(of: oid) else { return nil }
            return Entry(type: type, size: size, dataOffset: position + 20, baseOffset: base)
        default:
            return nil
        }
    }

    /// Inflates `size` bytes of zlib data starting at `from` into `into`.
    private func inflate(_ mapping: Mapping, from: Int, size: Int, into output: UnsafeMutableRawPointer) -> Bool {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return false }
        defer { inflateEnd(&stream) }
        var input = from
        var produced = 0
        while true {
            let available = min(mapping.length - input, Int(UInt32.max))
            guard available > 0 else { return false }
            stream.next_in = UnsafeMutablePointer(mutating: mapping.base.assumingMemoryBound(to: UInt8.self) + input)
            stream.avail_in = UInt32(available)
            stream.next_out = output.assumingMemoryBound(to: UInt8.self) + produced
            // One byte more than expected: an object longer than its header says is corrupt, not truncated.
            stream.avail_out = UInt32(min(size - produced + 1, Int(UInt32.max)))
            let before = (stream.total_in, stream.total_out)
            let status = zlibInflate(&stream)
            produced = Int(stream.total_out)
            input += Int(stream.total_in - before.0)
            if status == Z_STREAM_END { return produced == size }
            guard status == Z_OK || status == Z_BUF_ERROR, produced <= size else { return false }
            if stream.total_in == before.0 && stream.total_out == before.1 { return false }  // no progress
        }
    }

    /// Whether the entry at `offset` is a whole (not delta) blob of at least `minimum` bytes, read from the mapped
    /// pack without a system call.
    func isWholeBlob(pack: Int, at offset: UInt64, atLeast minimum: Int) -> Bool {
        guard let mapping = mappings[pack], let found = entry(pack: pack, at: offset, mapping) else { return false }
        return found.type == 3 && found.size >= minimum
    }

    /// The blob at `offset` of pack `pack`, resolved through its delta chain; nil when libgit2 should read it.
    func object(pack: Int, at offset: UInt64) -> Object? {
        guard let mapping = mappings[pack] else { return nil }
        // Walk down the chain to a cached object or a whole one, without recursion (chains may be long).
        var chain: [(offset: UInt64, entry: Entry)] = []
        var current = offset
        var base: Object?
        while true {
            if let cached = cache.withLock({ $0.objects[Self.key(pack, current)] }) {
                base = cached
                break
            }
            guard let found = entry(pack: pack, at: current, mapping), chain.count < 10_000 else { return nil }
            chain.append((current, found))
            guard let next = found.baseOffset else { break }
            current = next
        }
        if base == nil {
            // The bottom of the chain is a whole object.
            let bottom = chain.removeLast()
            guard bottom.entry.type == 3 || !chain.isEmpty else { return nil }  // only blobs are exported
            let object = Object(count: bottom.entry.size)
            guard
                bottom.entry.size == 0
                    || inflate(
                        mapping, from: bottom.entry.dataOffset, size: bottom.entry.size, into: object.bytes.baseAddress!
                    )
            else { return nil }
            remember(object, pack: pack, at: bottom.offset)
            base = object
        }
        // Apply the deltas upwards. Every result is kept, the object asked for too: in pack order, the objects that
        // follow are built on the ones before them (git's own cache, filled in path order, keeps only bases).
        while let link = chain.popLast() {
            guard let source = base, let result = applyDelta(mapping, link.entry, to: source) else { return nil }
            remember(result, pack: pack, at: link.offset)
            base = result
        }
        return base
    }

    private static func key(_ pack: Int, _ offset: UInt64) -> UInt64 { UInt64(pack) << 48 | offset }

    private func remember(_ object: Object, pack: Int, at offset: UInt64) {
        guard object.count <= Self.cacheLimit / 8 else { return }
        let key = Self.key(pack, offset)
        cache.withLock { cache in
            guard cache.objects.updateValue(object, forKey: key) == nil else { return }
            cache.order.append(key)
            cache.bytes += object.count
            // Oldest first: in pack order the oldest are the least likely to be a base again.
            while cache.bytes > Self.cacheLimit, cache.head < cache.order.count {
                if let evicted = cache.objects.removeValue(forKey: cache.order[cache.head]) {
                    cache.bytes -= evicted.count
                }
                cache.head += 1
            }
            if cache.head > 4096, cache.head * 2 > cache.order.count {
                cache.order.removeFirst(cache.head)
                cache.head = 0
            }
        }
    }

    /// Applies one delta (git's copy/insert format) to `source`.
    private func applyDelta(_ mapping: Mapping, _ entry: Entry, to source: Object) -> Object? {
        let delta = UnsafeMutableRawBufferPointer.allocate(byteCount: max(entry.size, 1), alignment: 16)
        defer { delta.deallocate() }
        guard inflate(mapping, from: entry.dataOffset, size: entry.size, into: delta.baseAddress!) else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: delta[0..<entry.size])
        var position = 0
        func varint() -> Int? {
            var value = 0
            var shift = 0
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                value |= Int(byte & 0x7f) << shift
                shift += 7
                if byte & 0x80 == 0 { return value }
                if shift > 56 { return nil }
            }
            return nil
        }
        guard let sourceSize = varint(), sourceSize == source.count,
            let targetSize = varint()
        else { return nil }
        let target = Object(count: targetSize)
        let out = target.bytes.baseAddress!
        let input = UnsafeRawPointer(source.bytes.baseAddress!)
        var written = 0
        while position < bytes.count {
            let op = bytes[position]
            position += 1
            if op & 0x80 != 0 {
                var copyOffset = 0
                var copySize = 0
                for bit in 0..<4 where op & (1 << bit) != 0 {
                    guard position < bytes.count else { return nil }
                    copyOffset |= Int(bytes[position]) << (8 * bit)
                    position += 1
                }
                for bit in 0..<3 where op & (1 << (4 + bit)) != 0 {
                    guard position < bytes.count else { return nil }
                    copySize |= Int(bytes[position]) << (8 * bit)
                    position += 1
                }
                if copySize == 0 { copySize = 0x10000 }
                guard copyOffset + copySize <= sourceSize, written + copySize <= targetSize else { return nil }
                (out + written).copyMemory(from: input + copyOffset, byteCount: copySize)
                written += copySize
            } else if op != 0 {
                let count = Int(op)
                guard position + count <= bytes.count, written + count <= targetSize else { return nil }
                (out + written).copyMemory(from: bytes.baseAddress! + position, byteCount: count)
                position += count
                written += count
            } else {
                return nil
            }
        }
        return written == targetSize ? target : nil
    }
}

/// zlib's `inflate`, named apart from `PackReader.inflate`.
private func zlibInflate(_ stream: inout z_stream) -> Int32 {
    inflate(&stream, Z_NO_FLUSH)
}

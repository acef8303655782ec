import CLibGit2
import Foundation

/// Where each object lives in a repository's packs, read from the packs' `.idx` files (version 2), so that an export
/// can read blobs in pack order and stream large ones straight from the pack.
///
/// Reading in pack order is what makes an export of a real repository fast: git writes a delta's base before the
/// delta, so walking the pack forwards finds the base in libgit2's delta base cache, where walking the tree jumps
/// about and inflates the same bases again and again.
final class PackIndex: @unchecked Sendable {
    // @unchecked: built once before an export's threads start and only read by them: mapped indexes (read-only
    // mappings) and `pread` on the pack descriptors, which has no shared file position.
    /// One `.idx` file, mapped read-only, with its `.pack` open for `pread`.
    final class Pack {
        let packPath: String
        let count: Int
        private let map: UnsafeRawPointer
        private let mapLength: Int
        let packDescriptor: Int32

        init?(indexPath: String, packPath: String) {
            let fd = open(indexPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_size >= 8 + 1024 + 40 else { return nil }
            let length = Int(info.st_size)
            guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
                return nil
            }
            let base = UnsafeRawPointer(mapped)
            // "\377tOc", version 2.
            guard base.load(as: UInt32.self) == UInt32(0xff74_4f63).bigEndian,
                UInt32(bigEndian: base.load(fromByteOffset: 4, as: UInt32.self)) == 2
            else {
                munmap(mapped, length)
                return nil
            }
            let objects = Int(UInt32(bigEndian: base.load(fromByteOffset: 8 + 255 * 4, as: UInt32.self)))
            guard length >= 8 + 1024 + objects * (20 + 4 + 4) + 40 else {
                munmap(mapped, length)
                return nil
            }
            let pack = open(packPath, O_RDONLY | O_CLOEXEC)
            guard pack >= 0 else {
                munmap(mapped, length)
                return nil
            }
            self.packPath = packPath
            count = objects
            map = base
            mapLength = length
            packDescriptor = pack
        }

        deinit {
            munmap(UnsafeMutableRawPointer(mutating: map), mapLength)
            close(packDescriptor)
        }

        private func fanout(_ byte: Int) -> Int {
            byte < 0 ? 0 : Int(UInt32(bigEndian: map.load(fromByteOffset: 8 + byte * 4, as: UInt32.self)))
        }

        /// The offset of `oid` in the pack, or nil when this pack does not have it.
        func offset(of oid: git_oid) -> UInt64? {
            withUnsafeBytes(of: oid.id) { (wanted: UnsafeRawBufferPointer) -> UInt64? in
                let names = map + 8 + 1024
                var low = fanout(Int(wanted[0]) - 1)
                var high = fanout(Int(wanted[0]))
                while low < high {
                    let middle = (low + high) / 2
                    let order = memcmp(names + middle * 20, wanted.baseAddress!, 20)
                    if order == 0 { return entryOffset(middle) }
                    if order < 0 { low = middle + 1 } else { high = middle }
                }
                return nil
            }
        }

        private func entryOffset(_ index: Int) -> UInt64 {
            let offsets = 8 + 1024 + count * 24
            let small = UInt32(bigEndian: map.load(fromByteOffset: offsets + index * 4, as: UInt32.self))
            guard small & 0x8000_0000 != 0 else { return UInt64(small) }
            // Packs over 2 GiB keep large offsets in a table of their own.
            let large = offsets + count * 4 + Int(small & 0x7fff_ffff) * 8
            guard large + 8 <= mapLength else { return UInt64(small & 0x7fff_ffff) }
            return UInt64(bigEndian: map.loadUnaligned(fromByteOffset: large, as: UInt64.self))
        }
    }

    let packs: [Pack]
    /// The object directory, for loose objects.
    let objectDirectory: String

    /// The packs of the object directory `objects` (alternates are not followed: their objects are read through
    /// libgit2 as usual).
    init(objectDirectory objects: String) {
        objectDirectory = objects
        let directory = objects + "/pack"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        packs = names.filter { $0.hasSuffix(".idx") }.sorted().compactMap { name in
            let stem = directory + "/" + name.dropLast(4)
            return Pack(indexPath: stem + ".idx", packPath: stem + ".pack")
        }
    }

    /// The pack and offset of `oid`, or nil for an object that is loose (or in an alternate).
    func location(of oid: git_oid) -> (pack: Int, offset: UInt64)? {
        for (index, pack) in packs.enumerated() {
            if let offset = pack.offset(of: oid) { return (index, offset) }
        }
        return nil
    }

    /// The number of objects in all packs, for git's automatic abbreviation length.
    var objectCount: Int { packs.reduce(0) { $0 + $1.count } }
}

extension PackIndex.Pack {
    /// Writes the blob at `offset` to `fd` by inflating it straight from the pack, a chunk at a time, so that a
    /// file of any size costs two small buffers. Returns nil, having written nothing, when the entry is not a
    /// whole blob (a delta, which libgit2 must resolve) or is smaller than `minimum` bytes.
    func streamBlob(at offset: UInt64, ifAtLeast minimum: Int, to fd: Int32, path: [CChar]) throws(GitError) -> Int? {
        var header = [UInt8](repeating: 0, count: 32)
        let got = pread(packDescriptor, &header, header.count, off_t(offset))
        guard got > 0 else { return nil }
        var byte = header[0]
        let type = (byte >> 4) & 7
        var size = UInt64(byte & 15)
        var shift: UInt64 = 4
        var used = 1
        while byte & 0x80 != 0 {
            guard used < got, shift < 64 else { return nil }
            byte = header[used]
            used += 1
            size |= UInt64(byte & 0x7f) << shift
            shift += 7
        }
        // OBJ_BLOB; deltas and anything else go through libgit2, and so do small blobs, which it reads as fast.
        guard type == 3, size >= UInt64(minimum) else { return nil }

        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        let chunk = 256 * 1024
        let input = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { input.deallocate() }
        let output = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { output.deallocate() }
        var position = off_t(offset) + off_t(used)
        var written: UInt64 = 0
        var status = Z_OK
        while status != Z_STREAM_END {
            if stream.avail_in == 0 {
                let n = pread(packDescriptor, input, chunk, position)
                guard n > 0 else {
                    throw GitError(
                        code: .generic, errorClass: .init(rawValue: Int32(GIT_ERROR_ODB.rawValue)),
                        message: "\(packPath) ends inside the object at offset \(offset)", function: "export")
                }
                position += off_t(n)
                stream.next_in = input
                stream.avail_in = UInt32(n)
            }
            stream.next_out = output
            stream.avail_out = UInt32(chunk)
            status = inflate(&stream, Z_NO_FLUSH)
            guard status == Z_OK || status == Z_STREAM_END else {
                throw GitError(
                    code: .generic, errorClass: .init(rawValue: Int32(GIT_ERROR_ZLIB.rawValue)),
                    message: "the object at offset \(offset) of \(packPath) is corrupt (zlib \(status))",
                    function: "inflate")
            }
            let produced = chunk - Int(stream.avail_out)
            try writeAll(fd, UnsafeRawPointer(output), produced, path: path)
            written += UInt64(produced)
        }
        guard written == size else {
            throw GitError(
                code: .generic, errorClass: .init(rawValue: Int32(GIT_ERROR_ODB.rawValue)),
                message: "the object at offset \(offset) of \(packPath) has \(written) bytes, not \(size)",
                function: "export")
        }
        return Int(written)
    }
}

/// Writes all of `count` bytes, retrying after signals and short writes.
func writeAll(_ fd: Int32, _ data: UnsafeRawPointer?, _ count: Int, path: [CChar]) throws(GitError) {
    if let code = writeFully(fd, data, count) { throw GitError(posix: code, path: path, function: "write") }
}

/// Writes all of `bytes`.
func writeAll(_ fd: Int32, _ bytes: [UInt8], path: [CChar]) throws(GitError) {
    let code = bytes.withUnsafeBytes { writeFully(fd, $0.baseAddress, $0.count) }
    if let code { throw GitError(posix: code, path: path, function: "write") }
}

/// The errno of a failed write, or nil when all `count` bytes went out.
private func writeFully(_ fd: Int32, _ data: UnsafeRawPointer?, _ count: Int) -> Int32? {
    guard let data else { return nil }
    var done = 0
    while done < count {
        let n = write(fd, data + done, count - done)
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        done += n
    }
    return nil
}

extension PackIndex {
    /// Writes the loose blob `oid` to `fd`, inflating its file a chunk at a time (libgit2 maps the whole file and
    /// would hold a large one in memory). Returns nil, having written nothing, when there is no such loose file (the
    /// object is in an alternate) or it is not a blob.
    func streamLooseBlob(_ oid: git_oid, to fd: Int32, path: [CChar]) throws(GitError) -> Int? {
        let hex = OID(oid).hex
        let file = "\(objectDirectory)/\(hex.prefix(2))/\(hex.dropFirst(2))"
        let input = open(file, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return nil }
        defer { close(input) }
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        let chunk = 256 * 1024
        let compressed = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { compressed.deallocate() }
        let output = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { output.deallocate() }
        var header: [UInt8]? = []
        var expected = 0
        var written = 0
        var status = Z_OK
        func corrupt(_ why: String) -> GitError {
            GitError(
                code: .generic, errorClass: .init(rawValue: Int32(GIT_ERROR_ODB.rawValue)),
                message: "the loose object \(hex) is corrupt: \(why)", function: "export")
        }
        while status != Z_STREAM_END {
            if stream.avail_in == 0 {
                let n = read(input, compressed, chunk)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw corrupt("it ends early") }
                stream.next_in = compressed
                stream.avail_in = UInt32(n)
            }
            stream.next_out = output
            stream.avail_out = UInt32(chunk)
            status = inflate(&stream, Z_NO_FLUSH)
            guard status == Z_OK || status == Z_STREAM_END else { throw corrupt("zlib \(status)") }
            var produced = UnsafeRawBufferPointer(start: output, count: chunk - Int(stream.avail_out))
            if var pending = header {
                // "blob <size>\0" comes first; nothing is written until it has been read.
                guard let end = produced.firstIndex(of: 0) else {
                    pending += produced
                    guard pending.count < 32 else { throw corrupt("no header") }
                    header = pending
                    continue
                }
                pending += produced[..<end]
                let text = String(decoding: pending, as: UTF8.self)
                guard text.hasPrefix("blob "), let size = Int(text.dropFirst(5)) else {
                    guard written == 0, text.contains(" ") else { throw corrupt("bad header") }
                    return nil  // not a blob: libgit2 reports it
                }
                expected = size
                header = nil
                produced = UnsafeRawBufferPointer(rebasing: produced[(end + 1)...])
            }
            try writeAll(fd, produced.baseAddress, produced.count, path: path)
            written += produced.count
        }
        guard header == nil, written == expected else { throw corrupt("\(written) bytes, not \(expected)") }
        return written
    }
}

import Foundation

/// Copies a file tree so that nothing done to the copy can reach the original: every regular file is a copy-on-write
/// clone (`FICLONE`) where the file system has reflinks (XFS, Btrfs, bcachefs, ZFS 2.2+), else a real copy of its
/// bytes made in the kernel (`sendfile`), else read and written. Never a hard link: a step that appends to,
/// truncates or chmods a file in the copy would write through one into the original.
///
/// Directories, modes and modification times are kept; symlinks are copied as symlinks, never followed; hard links
/// inside the tree become separate files; sockets and devices are left out. Every name is opened relative to its
/// parent's descriptor with `O_NOFOLLOW`, so a symlink in either tree cannot lead the copy outside them.
struct TreeCopy {
    /// How the regular files were copied.
    enum Mechanism: String, Sendable {
        case reflink = "copy-on-write clones"
        case copy = "copies"
    }

    struct Summary: Sendable {
        var files = 0
        var bytes = 0
        var mechanism = Mechanism.reflink
    }

    /// Directories nested deeper than this are refused: each level holds two descriptors open.
    static let maximumDepth = 256

    private var summary = Summary()
    /// Set once a clone is refused: the file system has no reflinks (or not between these two places).
    private var clonesRefused = false

    /// What `copy(_:from:to:)` did.
    enum Outcome: Sendable {
        case copied(Summary)
        /// The source tree has nothing at the path.
        case missing
        /// The destination tree has something at the path already; it is left alone.
        case present
    }

    /// Copies what is at `path` (relative, `/`-separated, no `..`) in the directory `sourceRoot` to the same path
    /// in `destinationRoot`, making the destination's missing parent directories. A parent that is a symlink on
    /// either side is not followed: it counts as missing in the source, and as a failure in the destination.
    static func copy(
        _ path: String, from sourceRoot: String, to destinationRoot: String
    ) throws(TreeCopyError)
        -> Outcome
    {
        var parents = path.split(separator: "/").map { Array(String($0).utf8CString) }
        let name = parents.removeLast()
        guard let source = try openDirectory(sourceRoot, parents, create: false) else { return .missing }
        defer { close(source) }
        var info = stat()
        guard fstatat(source, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return .missing }
        guard let destination = try openDirectory(destinationRoot, parents, create: true) else {
            throw TreeCopyError(message: "\(destinationRoot)/\(path): cannot be made")
        }
        defer { close(destination) }
        guard fstatat(destination, name, &info, AT_SYMLINK_NOFOLLOW) != 0 else { return .present }
        var copier = TreeCopy()
        do {
            try copier.copyEntry(name, from: source, to: destination, depth: 0)
        } catch {
            // A half-made copy is no cache: the build starts from nothing rather than from part of it.
            removeTree(name, in: destination, depth: 0)
            throw error
        }
        if copier.clonesRefused || copier.summary.files == 0 { copier.summary.mechanism = .copy }
        return .copied(copier.summary)
    }

    /// Removes `name` in `directory` and everything under it, following no symlink.
    private static func removeTree(_ name: [CChar], in directory: Int32, depth: Int) {
        if unlinkat(directory, name, 0) == 0 || errno == ENOENT || depth >= maximumDepth { return }
        let inner = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard inner >= 0 else { return }
        for child in (try? names(in: inner, path: name)) ?? [] {
            removeTree(child, in: inner, depth: depth + 1)
        }
        close(inner)
        unlinkat(directory, name, AT_REMOVEDIR)
    }

    /// `root/parents…` opened as a directory, one component at a time without following symlinks; nil when a
    /// component is missing (and not to be created) or is not a directory.
    private static func openDirectory(
        _ root: String, _ parents: [[CChar]], create: Bool
    ) throws(TreeCopyError)
        -> Int32?
    {
        var current = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { throw .init("open", Array(root.utf8CString), errno) }
        for component in parents {
            if create, mkdirat(current, component, 0o755) != 0, errno != EEXIST {
                let code = errno
                close(current)
                throw .init("mkdir", component, code)
            }
            let next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(current)
            guard next >= 0 else { return nil }
            current = next
        }
        return current
    }

    /// `name` is a file name's bytes with a NUL at the end: names on disk need not be UTF-8.
    private mutating func copyEntry(
        _ name: [CChar], from source: Int32, to destination: Int32, depth: Int
    ) throws(TreeCopyError) {
        var info = stat()
        guard fstatat(source, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw .init("stat", name, errno) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            try copyDirectory(name, info, from: source, to: destination, depth: depth)
        case S_IFREG:
            try copyFile(name, info, from: source, to: destination)
        case S_IFLNK:
            try copySymlink(name, size: Int(info.st_size), from: source, to: destination)
        case S_IFIFO:
            guard mkfifoat(destination, name, info.st_mode & 0o7777) == 0 else { throw .init("mkfifo", name, errno) }
        default:
            break  // a socket or a device: nothing a build could start from
        }
    }

    private mutating func copyDirectory(
        _ name: [CChar], _ info: stat, from source: Int32, to destination: Int32, depth: Int
    ) throws(TreeCopyError) {
        guard depth < Self.maximumDepth else {
            throw TreeCopyError(
                message: "\(TreeCopyError.text(name)): nested more than \(Self.maximumDepth) directories deep")
        }
        let from = openat(source, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard from >= 0 else { throw .init("open", name, errno) }
        defer { close(from) }
        guard mkdirat(destination, name, 0o700) == 0 else { throw .init("mkdir", name, errno) }
        let to = openat(destination, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard to >= 0 else { throw .init("open", name, errno) }
        defer { close(to) }
        for child in try Self.names(in: from, path: name) {
            do {
                try copyEntry(child, from: from, to: to, depth: depth + 1)
            } catch {
                throw TreeCopyError(message: TreeCopyError.text(name) + "/" + error.message)
            }
        }
        // The mode and times last: a read-only directory can still be filled, and filling it changes its mtime.
        guard fchmod(to, info.st_mode & 0o7777) == 0 else { throw .init("chmod", name, errno) }
        var times = [info.st_atim, info.st_mtim]
        futimens(to, &times)
    }

    private mutating func copyFile(
        _ name: [CChar], _ info: stat, from source: Int32, to destination: Int32
    ) throws(TreeCopyError) {
        let from = openat(source, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard from >= 0 else { throw .init("open", name, errno) }
        defer { close(from) }
        let to = openat(destination, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard to >= 0 else { throw .init("create", name, errno) }
        defer { close(to) }
        if !clonesRefused, ioctl(to, Self.ficlone, from) != 0 {
            // Any refusal means this file system (or this pair of places) has no reflinks: stop asking.
            clonesRefused = true
        }
        if clonesRefused {
            try Self.copyBytes(from: from, to: to, name: name)
        }
        guard fchmod(to, info.st_mode & 0o7777) == 0 else { throw .init("chmod", name, errno) }
        var times = [info.st_atim, info.st_mtim]
        futimens(to, &times)
        summary.files += 1
        summary.bytes += Int(info.st_size)
    }

    private func copySymlink(
        _ name: [CChar], size: Int, from source: Int32, to destination: Int32
    ) throws(TreeCopyError) {
        var target = [CChar](repeating: 0, count: max(size, 255) + 2)
        let length = readlinkat(source, name, &target, target.count - 1)
        guard length >= 0, length < target.count - 1 else { throw .init("readlink", name, errno) }
        target[length] = 0
        guard symlinkat(target, destination, name) == 0 else { throw .init("symlink", name, errno) }
    }

    /// `_IOW(0x94, 9, int)` from linux/fs.h, which Swift does not import as a constant.
    private static let ficlone = UInt(0x4004_9409)

    /// The bytes of `from` into `to`: in the kernel with `sendfile` (Glibc's module does not import
    /// `copy_file_range`, and on the file systems without reflinks both copy the bytes), or read and written where
    /// the kernel refuses.
    private static func copyBytes(from: Int32, to: Int32, name: [CChar]) throws(TreeCopyError) {
        while true {
            let copied = sendfile(to, from, nil, 1 << 30)
            if copied > 0 { continue }
            if copied == 0 { return }
            if errno == EINTR { continue }
            if [ENOSYS, EINVAL, EOPNOTSUPP].contains(errno) { break }
            throw .init("copy", name, errno)
        }
        // sendfile may have copied part before failing: start again from the beginning.
        guard lseek(from, 0, SEEK_SET) == 0, ftruncate(to, 0) == 0, lseek(to, 0, SEEK_SET) == 0 else {
            throw .init("copy", name, errno)
        }
        let chunk = 256 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(from, buffer, chunk)
            if count == 0 { return }
            if count < 0 {
                if errno == EINTR { continue }
                throw .init("read", name, errno)
            }
            var done = 0
            while done < count {
                let written = write(to, buffer + done, count - done)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw .init("write", name, errno)
                }
                done += written
            }
        }
    }

    /// The names in a directory, without `.` and `..`, each with its NUL.
    private static func names(in directory: Int32, path: [CChar]) throws(TreeCopyError) -> [[CChar]] {
        let descriptor = dup(directory)
        guard descriptor >= 0, let stream = fdopendir(descriptor) else {
            if descriptor >= 0 { close(descriptor) }
            throw .init("opendir", path, errno)
        }
        defer { closedir(stream) }
        var names: [[CChar]] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                bytes.prefix { $0 != 0 }.map { CChar(bitPattern: $0) } + [0]
            }
            if name != [46, 0] && name != [46, 46, 0] { names.append(name) }
        }
        return names
    }
}

/// Why a tree could not be copied, naming the path inside it.
struct TreeCopyError: Error, CustomStringConvertible {
    let message: String

    init(message: String) {
        self.message = message
    }

    init(_ operation: String, _ path: [CChar], _ code: Int32) {
        message = "\(Self.text(path)): \(operation): \(String(cString: strerror(code)))"
    }

    /// A name's bytes as text for a message (not UTF-8 shows as U+FFFD).
    static func text(_ name: [CChar]) -> String {
        String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var description: String { message }
}

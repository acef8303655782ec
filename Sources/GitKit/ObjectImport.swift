import CLibGit2

extension Repository {
    /// Copies into this repository every object of the object directories `directories` (loose objects and packs)
    /// that it does not have yet, and returns how many it copied.
    ///
    /// This is how a pushed commit reaches a mirror before git has accepted the push: during `pre-receive`, git keeps
    /// the pushed objects in a quarantine directory (`GIT_QUARANTINE_PATH`) that no ref reaches and that a fetch
    /// cannot see, and deletes it if the push is refused.
    @discardableResult
    public func importObjects(from directories: [String]) throws(GitError) -> Int {
        try withObjectDatabase { (target) throws(GitError) -> Int in
            var copied = 0
            for directory in directories {
                var source: OpaquePointer?
                try check(git_odb_open(&source, directory), "git_odb_open")
                defer { git_odb_free(source) }
                for var oid in try Self.objectIDs(in: source!) where git_odb_exists(target, &oid) != 1 {
                    var object: OpaquePointer?
                    try check(git_odb_read(&object, source, &oid), "git_odb_read")
                    defer { git_odb_object_free(object) }
                    var written = git_oid()
                    try check(
                        git_odb_write(
                            &written, target, git_odb_object_data(object), git_odb_object_size(object),
                            git_odb_object_type(object)),
                        "git_odb_write")
                    copied += 1
                }
            }
            return copied
        }
    }

    /// Every object id in an object database.
    private static func objectIDs(in odb: OpaquePointer) throws(GitError) -> [git_oid] {
        final class Collected {
            var ids: [git_oid] = []
        }
        let collected = Collected()
        try withExtendedLifetime(collected) { () throws(GitError) -> Void in
            try check(
                git_odb_foreach(
                    odb,
                    { oid, payload in
                        guard let oid, let payload else { return 0 }
                        Unmanaged<Collected>.fromOpaque(payload).takeUnretainedValue().ids.append(oid.pointee)
                        return 0
                    }, Unmanaged.passUnretained(collected).toOpaque()),
                "git_odb_foreach")
        }
        return collected.ids
    }
}

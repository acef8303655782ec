import CLibGit2

/// GitKit's transport for `ssh://` and scp-like (`user@host:path`) URLs: libgit2's smart protocol over the system's
/// OpenSSH client, as libgit2 1.7 does with its exec-based SSH.
///
/// libgit2 1.5's built-in SSH uses the libssh2 it was built with, which signs with SHA-1 RSA (refused by current
/// OpenSSH servers), cannot exchange keys with a host known only by its RSA key, and reads neither
/// `~/.ssh/config` nor the system's known_hosts. Running `ssh` gives users exactly the SSH they already have: every
/// key type and format, agents, `ProxyJump`, hashed known_hosts, and OpenSSH's own strict host key checking.
enum SSHTransport {
    static func register() -> Int32 {
        for scheme in ["ssh", "ssh+git", "git+ssh"] {
            let rc = git_transport_register(scheme, git_transport_smart, definition)
            if rc < 0 && rc != GIT_EEXISTS.rawValue { return rc }
        }
        return 0
    }

    /// libgit2 keeps the pointer for ever, so the definition lives for the whole process. nonisolated(unsafe): it
    /// is written once, by this initialiser, and afterwards only read, by libgit2.
    nonisolated(unsafe) private static let definition: UnsafeMutableRawPointer = {
        let definition = UnsafeMutablePointer<git_smart_subtransport_definition>.allocate(capacity: 1)
        // rpc = 0: one ssh process carries the whole conversation, as with git://.
        definition.initialize(to: git_smart_subtransport_definition(callback: createSubtransport, rpc: 0, param: nil))
        return UnsafeMutableRawPointer(definition)
    }()
}

/// The subtransport for one remote: it starts an ssh session per service and hands the same session back for the
/// second step of a conversation (`UPLOADPACK_LS`, then `UPLOADPACK`).
private final class SSHSubtransport {
    /// The open stream, if any. libgit2 owns and frees it; its `free` clears this.
    var stream: UnsafeMutablePointer<slipway_subtransport_stream>?
}

/// The Swift side of a stream: the session and the operation to report failures to.
private final class SSHStream {
    let session: SSHSession
    unowned let subtransport: SSHSubtransport

    init(session: SSHSession, subtransport: SSHSubtransport) {
        self.session = session
        self.subtransport = subtransport
    }

    /// Reports `error` to the operation (which throws it in place of libgit2's words) and to libgit2.
    func fail(_ error: GitError) -> Int32 {
        if let operation = session.operation {
            operation.fail(error)
        } else {
            git_error_set_str(error.errorClass.rawValue, error.message)
        }
        return -1
    }
}

private func owner<T: AnyObject>(_ pointer: UnsafeMutableRawPointer?, as type: T.Type) -> T? {
    pointer.map { Unmanaged<T>.fromOpaque($0).takeUnretainedValue() }
}

private func subtransport(_ pointer: UnsafeMutablePointer<git_smart_subtransport>?) -> SSHSubtransport? {
    guard let pointer else { return nil }
    let wrapper = UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: slipway_subtransport.self)
    return owner(wrapper.pointee.owner, as: SSHSubtransport.self)
}

private func stream(_ pointer: UnsafeMutablePointer<git_smart_subtransport_stream>?) -> SSHStream? {
    guard let pointer else { return nil }
    let wrapper = UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: slipway_subtransport_stream.self)
    return owner(wrapper.pointee.owner, as: SSHStream.self)
}

private func createSubtransport(
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<git_smart_subtransport>?>?,
    _ transport: UnsafeMutablePointer<git_transport>?, _ param: UnsafeMutableRawPointer?
) -> Int32 {
    guard let out else { return -1 }
    // Freed by the `free` below, which libgit2 calls once when it is done with the transport.
    let wrapper = UnsafeMutablePointer<slipway_subtransport>.allocate(capacity: 1)
    wrapper.initialize(to: slipway_subtransport())
    wrapper.pointee.owner = Unmanaged.passRetained(SSHSubtransport()).toOpaque()
    wrapper.pointee.parent.action = performAction
    wrapper.pointee.parent.close = { pointer in
        // libgit2 frees the stream itself before it closes the subtransport; nothing of ours stays open.
        0
    }
    wrapper.pointee.parent.free = { pointer in
        guard let pointer else { return }
        let wrapper = UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: slipway_subtransport.self)
        if let owner = wrapper.pointee.owner { Unmanaged<SSHSubtransport>.fromOpaque(owner).release() }
        wrapper.deinitialize(count: 1)
        wrapper.deallocate()
    }
    out.pointee = UnsafeMutableRawPointer(wrapper).assumingMemoryBound(to: git_smart_subtransport.self)
    return 0
}

private func performAction(
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<git_smart_subtransport_stream>?>?,
    _ pointer: UnsafeMutablePointer<git_smart_subtransport>?, _ url: UnsafePointer<CChar>?,
    _ action: git_smart_service_t
) -> Int32 {
    guard let out, let pointer, let url, let transport = subtransport(pointer) else { return -1 }
    let service: String
    switch action {
    case GIT_SERVICE_UPLOADPACK_LS: service = "git-upload-pack"
    case GIT_SERVICE_RECEIVEPACK_LS: service = "git-receive-pack"
    case GIT_SERVICE_UPLOADPACK, GIT_SERVICE_RECEIVEPACK:
        // The second half of a conversation goes on over the session the first half opened.
        guard let open = transport.stream else {
            git_error_set_str(Int32(GIT_ERROR_NET.rawValue), "ssh: no session is open for this step")
            return -1
        }
        out.pointee = UnsafeMutableRawPointer(open).assumingMemoryBound(to: git_smart_subtransport_stream.self)
        return 0
    default:
        git_error_set_str(Int32(GIT_ERROR_NET.rawValue), "ssh: unknown action")
        return -1
    }
    let operation = CurrentRemoteOperation.state
    let session: SSHSession
    do {
        session = try SSHSession(url: String(cString: url), service: service, operation: operation)
    } catch {
        if let operation { operation.fail(error) } else { git_error_set_str(error.errorClass.rawValue, error.message) }
        return -1
    }
    // Freed by the stream's `free`, which libgit2 calls once when the conversation is over.
    let wrapper = UnsafeMutablePointer<slipway_subtransport_stream>.allocate(capacity: 1)
    wrapper.initialize(to: slipway_subtransport_stream())
    wrapper.pointee.owner = Unmanaged.passRetained(SSHStream(session: session, subtransport: transport)).toOpaque()
    wrapper.pointee.parent.subtransport = pointer
    wrapper.pointee.parent.read = { pointer, buffer, size, bytesRead in
        guard let stream = stream(pointer), let buffer, let bytesRead else { return -1 }
        do throws(GitError) {
            bytesRead.pointee = try stream.session.read(into: buffer, count: size)
            return 0
        } catch {
            bytesRead.pointee = 0
            return stream.fail(error)
        }
    }
    wrapper.pointee.parent.write = { pointer, buffer, length in
        guard let stream = stream(pointer), let buffer else { return -1 }
        do throws(GitError) {
            try stream.session.write(buffer, count: length)
            return 0
        } catch {
            return stream.fail(error)
        }
    }
    wrapper.pointee.parent.free = { pointer in
        guard let pointer else { return }
        let wrapper = UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: slipway_subtransport_stream.self)
        if let owner = wrapper.pointee.owner {
            let stream = Unmanaged<SSHStream>.fromOpaque(owner).takeRetainedValue()
            if stream.subtransport.stream == wrapper { stream.subtransport.stream = nil }
            stream.session.finish()
        }
        wrapper.deinitialize(count: 1)
        wrapper.deallocate()
    }
    transport.stream = wrapper
    out.pointee = UnsafeMutableRawPointer(wrapper).assumingMemoryBound(to: git_smart_subtransport_stream.self)
    return 0
}

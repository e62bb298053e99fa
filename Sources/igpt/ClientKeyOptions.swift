import ArgumentParser
import IGPTCluster

/// `--secret-key` / `--server-key` for workers and operator commands.
struct ClientKeyOptions: ParsableArguments {
  @Option(name: .customLong("secret-key"), help: "This client's CURVE secret key file (igpt keys generate).") var secretKey: String?
  @Option(name: .customLong("server-key"), help: "The coordinator's CURVE public key file.") var serverKey: String?

  /// The keys, or nil for a plaintext connection; both or neither must be given.
  func load(secretFallback: String? = nil, serverFallback: String? = nil) throws -> ClientKeys? {
    let s = secretKey ?? secretFallback
    let p = serverKey ?? serverFallback
    switch (s, p) {
    case (nil, nil): return nil
    case (let s?, let p?): return try ClientKeys(secretFile: s, serverFile: p)
    default: throw CleanError("give both --secret-key and --server-key (or neither, for a coordinator without keys)")
    }
  }
}

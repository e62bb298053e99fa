import ArgumentParser
import Foundation
import IGPTCluster

/// `igpt keys`: CURVE key pairs for coordinators, workers and operators.
struct KeysCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "keys",
    abstract: "Create and show CURVE keys (encrypted, allow-listed cluster traffic).",
    discussion: """
      Workflow: `igpt keys generate --out keys --name coordinator` on the coordinator's host; `igpt keys generate --out keys --name w1` for each worker or operator; copy every client's .pub into a directory (say allow/) on the coordinator's host and coordinator.pub to the clients. Then:
        igpt coordinator ... --secret-key keys/coordinator.key --allow allow/
        igpt worker --connect tcp://HOST:5555 --secret-key keys/w1.key --server-key coordinator.pub
      Add a client later by dropping its .pub into allow/ and sending the coordinator SIGHUP.
      """,
    subcommands: [Generate.self, Show.self])

  struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write a key pair: NAME.key (secret, mode 0600) and NAME.pub (public), Z85 text.")
    @Option(help: "Directory for the key files.") var out: String
    @Option(help: "Base name of the files.") var name = "igpt"

    func run() throws {
      let (secret, pub) = try CurveKey.writePair(dir: out, name: name)
      let key = try CurveKey.load(pub, secret: false)
      print("secret key: \(secret) (mode 0600: keep it on this host)")
      print("public key: \(pub)  \(key.z85)")
    }
  }

  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the public key of a key file (public or secret).")
    @Argument(help: "A .pub or .key file.") var file: String

    func run() throws {
      let text = String(decoding: FileManager.default.contents(atPath: file) ?? Data(), as: UTF8.self)
      let isSecret = text.contains("secret key")
      let key = try CurveKey.load(file, secret: isSecret)
      print(isSecret ? try key.publicKey().z85 : key.z85)
    }
  }
}

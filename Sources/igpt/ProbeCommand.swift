import ArgumentParser
import Foundation
import IGPTCluster
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTProbe

/// `igpt probe`: how good a checkpoint's features are, by linear probes.
struct ProbeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "probe",
    abstract: "Linear probes on a checkpoint's features (the paper's measure of representation quality).",
    subcommands: [Run.self, Submit.self, List.self])

  struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Queue a probe job on a running coordinator (its workers extract the features between training steps).",
      discussion: """
        The job uses the parameters of the step at which it starts; its results go to RUN/probes.jsonl and `igpt probe list`. Defaults come from the run config's probes section.

        Example: igpt probe submit --coordinator tcp://127.0.0.1:5555 --layers 2,4,6 --concat 3 --raw-pixels
        """)
    @Option(help: "Coordinator endpoint.") var coordinator: String
    @OptionGroup var keys: ClientKeyOptions
    @Option(help: "Layers: all, mid or a list like 1,4,7 (default: the config's probes.layers).") var layers: String?
    @Option(name: .customLong("train-images"), help: "Train images to fit on (default: probes.train_images).") var trainImages: Int?
    @Option(name: .customLong("eval-images"), help: "Val and test images (default: probes.eval_images).") var evalImages: Int?
    @Option(name: .customLong("labels-per-class"), help: "Low-data probe: this many train images per class, seeded (default: probes.labels_per_class).")
    var labelsPerClass: Int?
    @Option(help: "Also probe the concatenation of K layers centred on the best one (default: probes.concat).") var concat: Int?
    @Flag(name: .customLong("raw-pixels"), help: "Also fit the raw-pixel baseline (default: probes.raw_pixels).") var rawPixels = false
    @Option(help: "BERT models: average features over this many random masks (default: probes.masks).") var masks: Int?
    @Option(help: "Seed of the low-data selection and BERT masks, as probe run's --seed (default: probes.seed).") var seed: UInt64?
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 10

    func validate() throws {
      if let n = labelsPerClass, n < 1 { throw ValidationError("--labels-per-class must be at least 1") }
      if let k = concat, k < 0 { throw ValidationError("--concat must be at least 0") }
      if let k = masks, k < 1 { throw ValidationError("--masks must be at least 1") }
    }

    func run() throws {
      let client = try ClusterClient(endpoint: coordinator, keys: try keys.load())
      let submit = Wire.ProbeSubmit(layers: layers, trainImages: trainImages, evalImages: evalImages, labelsPerClass: labelsPerClass,
                                    concat: concat, rawPixels: rawPixels ? true : nil, masks: masks, seed: seed)
      let reply = try client.request(Message(.probeSubmit, meta: submit), expecting: .probeList, timeout: timeout)
      let list = try reply.decodeMeta(Wire.ProbeList.self)
      guard let job = list.jobs.first else { throw CleanError("the coordinator queued nothing") }
      print("queued \(job.summary)")
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a coordinator's probe jobs and, when done, their accuracies.")
    @Option(help: "Coordinator endpoint.") var coordinator: String
    @OptionGroup var keys: ClientKeyOptions
    @Flag(help: "Print the jobs as JSON.") var json = false
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 10

    func run() throws {
      let client = try ClusterClient(endpoint: coordinator, keys: try keys.load())
      let list = try client.request(Message(.probeListRequest), expecting: .probeList, timeout: timeout).decodeMeta(Wire.ProbeList.self)
      if json {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        print(String(decoding: try e.encode(list.jobs), as: UTF8.self))
        return
      }
      if list.jobs.isEmpty { print("no probe jobs") }
      for job in list.jobs {
        print(job.summary)
        for r in job.results {
          print(String(format: "    layer %@  l2 %-7g  train %.4f  val %.4f  test %.4f%@", Run.pad(r.features) as NSString, r.l2,
                       r.trainAccuracy, r.valAccuracy, r.testAccuracy, (r.features == job.bestLayer ? "  <- best" : "") as NSString))
        }
      }
    }
  }
}

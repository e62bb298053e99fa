import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

/// `igpt vqvae`: train and evaluate the VQ-VAE whose codes become latent token stores.
struct VQVAECommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vqvae",
    abstract: "Train and evaluate a VQ-VAE (images to a grid of codes, and back).",
    subcommands: [VQVAETrainCommand.self, VQVAEEvalCommand.self, VQVAEShowCommand.self, VQVAEBenchCommand.self])
}

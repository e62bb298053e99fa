import IGPTKernels

// Before any kernel code runs: the kernels may use instructions this CPU lacks.
KernelTarget.ensureSupported()
// OpenBLAS picks its kernels when it is loaded, so this must run before anything else.
OpenBLASCoreType.ensureCoreType()
// SIGINT/SIGTERM end every command within StopSignal.grace, long loops stopping cleanly first.
StopSignal.install()
IGPTCommand.main()

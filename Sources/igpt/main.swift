import IGPTKernels

// OpenBLAS picks its kernels when it is loaded, so this must run before anything else.
OpenBLASCoreType.ensureCoreType()
IGPTCommand.main()

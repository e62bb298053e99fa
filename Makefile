# igpt: build, test and benchmark. `make test` installs what it needs first (Debian packages).
SHELL := /bin/bash
PACKAGES := libopenblas-dev libzmq3-dev liblz4-dev libstb-dev zlib1g-dev libxml2 pkg-config dataset-fashion-mnist
SWIFT_TEST_FLAGS := -c release -Xswiftc -enable-testing

.PHONY: report-check check-targets bench-capacity fuzz setup build test test-kernels interop proto bench bench-data bench-cluster bench-torch clean oracle demo cluster-test

## setup: install missing Debian packages (a no-op when all are present)
setup:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	else echo "setup: all packages present"; fi

## demo: prepare Fashion-MNIST, train the tiny config through a coordinator and two workers (a few minutes on 2 cores), write samples and completions
demo: build
	@mkdir -p data runs
	@[ -d data/fmnist14 ] || .build/release/igpt prepare --dataset fashion-mnist --resolution 14 --palette 16 --out data/fmnist14
	IGPT_WORKER_THREADS=1 cluster/local.sh configs/fashion-mnist-tiny.yaml runs/demo 2 5555 -- $$( [ -d runs/demo/checkpoints ] && echo --resume )
	.build/release/igpt eval --checkpoint runs/demo --split test
	.build/release/igpt sample --checkpoint runs/demo --count 32 --temperature 1.0 --seed 1 --out runs/demo/samples.png
	.build/release/igpt complete --checkpoint runs/demo --split test --count 16 --seed 1 --out runs/demo/completions.png
	@echo
	@echo "token store:  data/fmnist14 (igpt show data/fmnist14 --split test --out grid.png)"
	@echo "run:          runs/demo (metrics.jsonl, checkpoints/, logs/ of the coordinator and both workers)"
	@echo "samples:      runs/demo/samples.png"
	.build/release/igpt report runs/demo
	@echo "completions:  runs/demo/completions.png (left original, right: top half kept, bottom sampled)"
	@echo "report:       runs/demo/report.html (open it in a browser; make report-check renders it in headless Chromium)"

## report-check: render the demo run's report in headless Chromium (installs Debian's chromium once) to runs/demo/report.png; fails on console messages
report-check:
	@[ -f runs/demo/report.html ] || { echo "report-check: run make demo first"; exit 1; }
	@command -v chromium >/dev/null || (SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null)
	bash Tests/Browser/render.sh runs/demo/report.html runs/demo/report.png

## bench-capacity: the cluster's own cost with emulated workers (25M parameters, 1-16 workers, 0-2 shards; cluster/README.md "Capacity")
bench-capacity: build
	.build/release/igpt bench-cluster --layers 8 --embd 512 --heads 8 --workers 1,2,4,8,16 --shards 0,1,2 --steps 6

## bench-cluster: igpt train vs coordinator + 1 worker, plaintext and CURVE, and training with a probe job running, side by side (tiny config)
bench-cluster: build
	@[ -d data/fmnist14 ] || .build/release/igpt prepare --dataset fashion-mnist --resolution 14 --palette 16 --out data/fmnist14
	bash cluster/bench.sh configs/fashion-mnist-tiny.yaml 60 3
	bash cluster/bench-probe-share.sh configs/fashion-mnist-tiny.yaml 80 2
	.build/release/igpt bench-codec --config configs/fashion-mnist-tiny.yaml

## fuzz: libFuzzer + AddressSanitizer on every parser of outside bytes (each for FUZZ_SECONDS=300 or FUZZ_RUNS=1000000, whichever first; FUZZ_TARGETS to pick)
fuzz: setup
	IGPT_FUZZ=1 swift build -c release --product igpt-fuzz --build-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address
	bash Tests/Fuzz/run.sh

## check-targets: build for haswell, x86-64 and (on AVX-512) skylake-avx512; same-arithmetic builds must compute the same bytes (~25 min)
check-targets: setup
	bash Tests/Targets/check.sh

## cluster-test: coordinator and workers in their own network namespaces (needs root): a worker killed, one joining, model byte-identical to igpt train
cluster-test: build
	bash cluster/netns-test.sh

## build: release build of the igpt binary (.build/release/igpt)
build: setup
	swift build -c release

## test: unit and end-to-end tests (release build with testing enabled)
test: setup
	swift build $(SWIFT_TEST_FLAGS) --product igpt
	swift test $(SWIFT_TEST_FLAGS)

## test-kernels: the numerics-sensitive suites again with another OpenBLAS kernel family
## (make test-kernels CORETYPE=Sandybridge; Haswell is what an AVX2 host runs), after make test
CORETYPE ?= Sandybridge
NUMERICS_SUITES := ConvolutionTests|VQVAETests|ProbeTests|FineTunerTests|ModelTests|ModelGradientTests|KernelGradientTests|AttentionTests|TrainingTests|RunNumericsTests|ClusterTests|ProbeJobTests|NumericsTests|TrainCommandTests|ShardTests|ShardStateTests
test-kernels: setup
	swift build $(SWIFT_TEST_FLAGS) --product igpt
	# the tests make test built, run with the variable set (a build with it set was seen to rebuild everything)
	OPENBLAS_CORETYPE=$(CORETYPE) swift test $(SWIFT_TEST_FLAGS) --skip-build --filter '$(NUMERICS_SUITES)'

## bench: training throughput at the reference shape (beside the sgemm ceiling) and data preparation speed
bench: build bench-data
	.build/release/igpt bench --layers 8 --embd 256 --heads 8 --seq 196 --batch 16 --vocab 16 --threads 2 --steps 10 --features --features-split
	.build/release/igpt bench --layers 8 --embd 256 --heads 8 --seq 196 --batch 16 --vocab 16 --threads 2 --steps 10 --features --feature-layers mid

## bench-torch: igpt bench and PyTorch's torch_igpt.py bench alternating on the same shape (5 pairs), at the
## bench shape (T 196) and at a 32x32 image's (T 1024, 4 x 512); installs torch into .venv-torch once
bench-torch: build
	@[ -x $(TORCH_PY) ] || (python3 -m venv .venv-torch && .venv-torch/bin/pip install -q torch numpy)
	bash Tests/Oracle/bench_vs_torch.sh .build/release/igpt $(TORCH_PY) 5
	bash Tests/Oracle/bench_vs_torch.sh .build/release/igpt $(TORCH_PY) 5 4 --layers 4 --embd 512 --heads 8 --seq 1024 --batch 4 --vocab 512 --threads 2

## bench-data: time igpt prepare on all of Fashion-MNIST (14x14, 16 levels) and the CIFAR-10 sample (32x32, 512 colours)
BENCH_TMP := $(shell mktemp -u /tmp/igpt-bench-XXXXXX)
bench-data: build
	@mkdir -p $(BENCH_TMP)
	.build/release/igpt prepare --dataset fashion-mnist --resolution 14 --palette 16 --out $(BENCH_TMP)/fmnist14
	@if [ -d ../shared/data/cifar10-sample ]; then \
	  .build/release/igpt prepare --dataset ../shared/data/cifar10-sample --resolution 32 --palette 512 --out $(BENCH_TMP)/cifar32; fi
	@rm -rf $(BENCH_TMP)

clean:
	rm -rf .build

## interop: igpt against transformers itself: from_pretrained of a step directory, transformers'
## save_pretrained (one file, sharded) in igpt, the image processor with our palette (installs
## torch and transformers into .venv-torch once; gigabytes, so not part of make test)
interop: build
	@[ -x $(TORCH_PY) ] || python3 -m venv .venv-torch
	@$(TORCH_PY) -c "import torch, transformers, PIL, tensorboard" 2>/dev/null || .venv-torch/bin/pip install -q torch numpy transformers safetensors pillow tensorboard
	$(TORCH_PY) Tests/Oracle/interop.py .build/release/igpt $$(mktemp -d /tmp/igpt-interop-XXXXXX)

## proto: regenerate the committed TensorBoard event code from its .proto (needs protobuf-compiler;
## builds swift-protobuf's plugin once, in .build-protoc)
PROTO_DIR := Sources/IGPTTraining/Proto
proto:
	@command -v protoc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null)
	swift build -c release --scratch-path .build-protoc --product protoc-gen-swift
	protoc --plugin=protoc-gen-swift=.build-protoc/release/protoc-gen-swift --swift_out=$(PROTO_DIR) --swift_opt=Visibility=Public \
	  --proto_path=$(PROTO_DIR) $(PROTO_DIR)/tensorboard_event.proto

## oracle: compare loss and gradient norms with ../shared/tools/torch_igpt.py (installs torch once)
TORCH_PY := .venv-torch/bin/python
oracle: build
	@[ -x $(TORCH_PY) ] || (python3 -m venv .venv-torch && .venv-torch/bin/pip install -q torch numpy)
	@for o in ar bert; do \
	  .build/release/igpt oracle --objective $$o --seq 196 --out .build/oracle-$$o >/dev/null && \
	  echo "$$o:" && $(TORCH_PY) Tests/Oracle/compare_with_torch.py .build/oracle-$$o ../shared/tools/torch_igpt.py $(TORCH_PY); \
	done

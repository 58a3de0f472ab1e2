# The one image that runs `kubeshark worker` (a DaemonSet) and `kubeshark hub`
# (a Deployment); see docs/kubernetes.md. Built from this repository:
#   docker build -t REGISTRY/kubeshark:0.1.0 .
# The Swift runtime is shared by the host and its plugins, so it is copied from
# the build image as shared libraries (never --static-swift-stdlib).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev zlib1g-dev libxdp-dev libbpf-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release \
 && mkdir -p /out/app /out/swift \
 && cp .build/release/kubeshark .build/release/libksplugin-*.so /out/app/ \
 && cp /usr/lib/swift/linux/*.so /out/swift/

FROM ${RUNTIME_IMAGE}
# libpcap (capture, filters), libxdp/libbpf and xdp programs (AF_XDP), iproute2
# (the AF_XDP mirror, pods on a machine), zlib (bodies), libcurl/libxml2 (Foundation).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 libxdp1 libbpf1 iproute2 zlib1g libcurl4 libxml2 \
      ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/swift/ /usr/lib/swift/linux/
COPY --from=build /out/app/ /app/
RUN echo /usr/lib/swift/linux > /etc/ld.so.conf.d/swift.conf && ldconfig \
 && /app/kubeshark version
# Plugins are found next to the executable; third-party ones in --plugins-dir.
WORKDIR /app
ENTRYPOINT ["/app/kubeshark"]

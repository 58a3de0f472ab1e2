#!/usr/bin/env bash
# Fuzzes one dissector plugin with libFuzzer for a bounded time, through the
# real ABI and the host's stream driver.
#
#   Fuzz/run.sh http 60          # a built-in Swift plugin, by name
#   Fuzz/run.sh memcached 60     # the plain-C example plugin
#
# Seeds come from Fuzz/seeds/<plugin>/; new interesting inputs are kept in
# .build-fuzz/corpus/<plugin>/ (not committed). A crash leaves its input in
# .build-fuzz/crashes/ and makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
plugin=${1:?plugin name}
seconds=${2:-60}
scratch=.build-fuzz
flags=(-c release --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer -Xswiftc -DKS_FUZZ -Xlinker --export-dynamic)

swift build "${flags[@]}" --product ks-plugin-fuzzer
bin="$scratch/release"
case "$plugin" in
  memcached)
    # C plugin: instrumented for coverage with the toolchain's clang.
    clang -std=c99 -O1 -g -fsanitize=fuzzer-no-link -shared -fPIC -I Sources/PluginAPI/include \
      -o "$bin/libksfuzz-memcached.so" Plugins/Examples/memcached/memcached.c
    target="$PWD/$bin/libksfuzz-memcached.so"
    ;;
  *)
    swift build "${flags[@]}" --product "ksplugin-$plugin"
    target="$plugin"
    ;;
esac

corpus="$scratch/corpus/$plugin"
crashes="$scratch/crashes"
mkdir -p "$corpus" "$crashes"
if [ -d "Fuzz/seeds/$plugin" ]; then cp -n Fuzz/seeds/"$plugin"/* "$corpus"/ 2>/dev/null || true; fi

echo "fuzzing $plugin for ${seconds}s"
KS_FUZZ_PLUGIN="$target" "$bin/ks-plugin-fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -max_len=8192 -print_final_stats=1 -artifact_prefix="$crashes/$plugin-" "$corpus" 2>&1 | grep -E "^(stat::|Done|INFO: Loaded|==|SUMMARY)" || true
if ls "$crashes/$plugin-"* >/dev/null 2>&1; then
  echo "fuzz: $plugin crashed; inputs in $crashes" >&2
  exit 1
fi
echo "fuzz: $plugin ran ${seconds}s without a crash"

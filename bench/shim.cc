// The C++ shim: registers every case of bench/cases.c with Google Benchmark and times pab_run. Nothing else lives
// here; the bodies are C. The multi-core family is timed in wall-clock time (it runs its own threads); the others in
// the calling thread's CPU time (see bench.h).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "bench.h"

namespace {

void run_case(benchmark::State &state, const pab_case *c) {
    void *ctx = nullptr;
    if (const char *why = pab_prepare(c, &ctx)) {
        state.SkipWithError(why);
        return;
    }
    for (auto _ : state) {
        pab_run(ctx);
        benchmark::ClobberMemory();
    }
    pab_finish(ctx);
    state.SetItemsProcessed(static_cast<int64_t>(static_cast<double>(state.iterations()) * c->elements));
    state.SetBytesProcessed(static_cast<int64_t>(static_cast<double>(state.iterations()) * c->bytes));
    state.counters["elems"] = c->elements;
    state.counters["threads_used"] = c->threads;
}

}  // namespace

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    char value[512];
    const char *key = nullptr;
    for (size_t i = 0; pab_context(i, &key, value, sizeof value); ++i) benchmark::AddCustomContext(key, value);
    for (size_t i = 0; i < pab_case_count(); ++i) {
        const pab_case *c = pab_case_at(i);
        benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(c->name, run_case, c);
        b->Unit(benchmark::kMicrosecond);
        if (c->wall_clock) b->UseRealTime();
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    pab_release_all();
    return 0;
}

// How long a restarted process takes to have a store's HNSW graph in use again after files were
// added since the graph was built: the time from opening the engine to its first search with the
// graph ready (the first search itself is answered exactly while the graph is loaded or built).
//   before: the graph saved once, after its build (what a process killed, or the code before
//           hnsw_save_every, leaves): the restart loads it and inserts what was added, or builds it
//           again from scratch when the additions are over a quarter of the store;
//   after:  the graph saved again after hnsw_save_every additions and at a graceful stop: the
//           restart loads it as it is.
// Built on demand: `cmake --build build --target rag-restart && build/bench/rag-restart
// [--first FILES] [--added FILES]` (8 chunks per file, 512-dimensional vectors around 1 centre per
// 100 chunks, as bench/rag/scale.cpp's).
#include "app/rag/engine.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

using namespace agente::rag;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr int dims = 512;
constexpr int sections_per_file = 8;

// Unit vectors around one centre per 100 texts (by hash), the same text always the same vector.
class Clustered final : public Embedder {
public:
    const std::string& model() const override { return model_; }
    std::vector<std::vector<float>> embed(const std::vector<std::string>& texts, const std::function<bool()>&) override {
        std::vector<std::vector<float>> out;
        for (const auto& t : texts) {
            std::size_t h = std::hash<std::string>{}(t);
            std::mt19937 centre{unsigned(h % 100)}, noise{unsigned(h)};
            std::normal_distribution<float> g(0, 1);
            std::vector<float> v(dims);
            for (auto& x : v) x = g(centre);
            for (auto& x : v) x += 0.6f * g(noise);
            normalize(v);
            out.push_back(std::move(v));
        }
        return out;
    }

private:
    std::string model_ = "clustered";
};

void write_files(const std::string& dir, int from, int to) {
    fs::create_directories(dir);
    std::mt19937 rng{unsigned(from)};
    const char* words[] = {"honey", "bees", "ocean", "tides", "moon", "rust", "ownership", "borrowing", "garden",
                           "river", "mountain", "language", "compiler", "queen", "colony", "gravity"};
    for (int f = from; f < to; ++f) {
        std::ofstream out(dir + "/f" + std::to_string(f) + ".md");
        for (int s = 0; s < sections_per_file; ++s) {
            out << "## Section " << s << " of file " << f << "\n\n";
            for (int w = 0; w < 120; ++w) out << words[rng() % 16] << (w % 12 == 11 ? ". " : " ");
            out << "\n\n";
        }
    }
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

SearchRequest question() {
    SearchRequest r;
    r.query = "honey bees of the colony";
    r.max_num_results = 5;
    return r;
}

// One run: `first` files ingested and searched (the graph built and saved), `added` more ingested
// and searched (the graph brought up to date in memory), the process gone (`graceful`: the engine
// destroyed, as at a graceful stop; else left as a killed process leaves it), then the restart timed.
void run(const char* label, int first, int added, int save_every, bool graceful) {
    std::string dir = (fs::temp_directory_path() / ("rag-restart-" + std::to_string(getpid()))).string();
    fs::remove_all(dir);
    RagSettings s;
    s.state_dir = dir;
    s.exact_search_below = 1000;
    s.hnsw_save_every = save_every;
    auto embedder = std::make_shared<Clustered>();
    auto* before = new Engine(s, embedder);
    write_files(dir + "/docs", 0, first);
    before->ingest_paths("kb", {dir + "/docs"});
    before->search_named("kb", question());
    before->indexes().wait_for_builds();
    write_files(dir + "/docs", first, first + added);
    IngestSummary more = before->ingest_paths("kb", {dir + "/docs"});
    before->search_named("kb", question());
    before->indexes().wait_for_builds();
    if (graceful) delete before;   // else leaked: nothing more is saved, as for a killed process

    auto t0 = Clock::now();
    Engine after(s, embedder);
    after.search_named("kb", question());
    double first_search = seconds_since(t0);
    after.indexes().wait_for_builds();
    double ready = seconds_since(t0);
    IndexCache::Counts c = after.indexes().counts();
    std::printf("%-44s %5d + %4ld chunks: first search %.2f s, graph in use %.2f s (%s)\n", label,
                first * sections_per_file, more.chunks, first_search, ready,
                c.built ? "built from scratch" : (c.loaded ? "loaded" : "none"));
    std::fflush(stdout);
    fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
    int first = 400, added = 250;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--first") first = std::stoi(argv[i + 1]);
        else if (a == "--added") added = std::stoi(argv[i + 1]);
    }
    unsetenv("STATE_DIRECTORY");
    int never = 100'000'000;
    run("before: saved after the build only", first, added, never, false);
    run("after: saved again at a graceful stop", first, added, never, true);
    run("after: saved again after 2000 additions", first, added, 2000, false);
    int few = std::max(1, first / 10);
    run("before: saved after the build only", first, few, never, false);
    run("after: saved again at a graceful stop", first, few, never, true);
}

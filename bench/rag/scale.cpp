// Search at scale, the embedding call excluded: exact search, HNSW (plain and with a 10% filter) and
// sqlite-vec's exact vec0 search over the same vectors, p50 and p99 per query, HNSW's recall@10
// against exact search, the index's memory; and ingest throughput (parse, chunk, hash, SQLite, with
// an embedder that answers at once). Built on demand: `cmake --build build --target rag-scale`;
// bench/rag/run.sh runs it with sqlite-vec from tests/js/node_modules.
//
// The vectors are synthetic: unit vectors around 1 centre per 100 (Gaussian noise), a stand-in for
// embeddings of texts on many topics (real embeddings of 100,000 chunks would take the JS model hours
// on this machine). Uniform random vectors would be harder for HNSW than any real corpus.
#include "app/rag/engine.hpp"
#include "app/rag/vector_index.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace agente::rag;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<float> unit(std::vector<float> v) {
    normalize(v);
    return v;
}

struct Data {
    std::vector<std::vector<float>> vectors, queries;
};

Data synthetic(std::size_t n, int dims, std::size_t queries, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0, 1);
    std::size_t clusters = std::max<std::size_t>(n / 100, 1);
    std::vector<std::vector<float>> centres(clusters, std::vector<float>(std::size_t(dims), 0.0f));
    for (auto& c : centres)
        for (auto& x : c) x = g(rng);
    auto around = [&](std::size_t c) {
        std::vector<float> v = centres[c];
        for (auto& x : v) x += 0.6f * g(rng);
        return unit(std::move(v));
    };
    Data d;
    for (std::size_t i = 0; i < n; ++i) d.vectors.push_back(around(i % clusters));
    std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
    for (std::size_t i = 0; i < queries; ++i) d.queries.push_back(around(pick(rng)));
    return d;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Latency {
    double p50, p99;
};

Latency percentiles(std::vector<double> t) {
    std::sort(t.begin(), t.end());
    return {t[t.size() / 2], t[std::min(t.size() - 1, t.size() * 99 / 100)]};
}

template <class F>
Latency timed(std::size_t queries, F&& f) {
    std::vector<double> t;
    for (std::size_t i = 0; i < queries; ++i) {
        auto t0 = Clock::now();
        f(i);
        t.push_back(ms(Clock::now() - t0));
    }
    return percentiles(std::move(t));
}

double recall(const std::vector<std::vector<long>>& truth, const std::vector<std::vector<long>>& got) {
    std::size_t hit = 0, all = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) {
        std::set<long> t(truth[i].begin(), truth[i].end());
        for (long l : got[i]) hit += t.count(l);
        all += truth[i].size();
    }
    return double(hit) / double(all);
}

std::vector<long> labels(const std::vector<Hit>& hits) {
    std::vector<long> out;
    for (auto& h : hits) out.push_back(h.label);
    return out;
}

void print(const char* what, std::size_t n, Latency l, const std::string& extra = {}) {
    std::printf("%-22s n=%-7zu p50 %7.3f ms  p99 %7.3f ms  %s\n", what, n, l.p50, l.p99, extra.c_str());
    std::fflush(stdout);
}

// sqlite-vec's exact KNN over the same vectors (cosine distance), and its recall against ours.
void sqlite_vec(const std::string& vec0, const Data& d, int dims, const std::vector<std::vector<long>>& truth) {
    sqlite3* db = nullptr;
    sqlite3_open(":memory:", &db);
    sqlite3_enable_load_extension(db, 1);
    char* err = nullptr;
    if (sqlite3_load_extension(db, vec0.c_str(), nullptr, &err) != SQLITE_OK) {
        std::printf("sqlite-vec: cannot load %s: %s\n", vec0.c_str(), err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(db);
        return;
    }
    std::string create = "CREATE VIRTUAL TABLE v USING vec0(embedding float[" + std::to_string(dims) + "] distance_metric=cosine)";
    sqlite3_exec(db, create.c_str(), nullptr, nullptr, nullptr);
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO v(rowid, embedding) VALUES(?1, ?2)", -1, &ins, nullptr);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < d.vectors.size(); ++i) {
        sqlite3_bind_int64(ins, 1, sqlite3_int64(i));
        sqlite3_bind_blob(ins, 2, d.vectors[i].data(), int(d.vectors[i].size() * sizeof(float)), SQLITE_STATIC);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    double load = ms(Clock::now() - t0);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, "SELECT rowid FROM v WHERE embedding MATCH ?1 AND k = 10 ORDER BY distance", -1, &q, nullptr);
    std::vector<std::vector<long>> got(d.queries.size());
    Latency l = timed(d.queries.size(), [&](std::size_t i) {
        sqlite3_bind_blob(q, 1, d.queries[i].data(), int(d.queries[i].size() * sizeof(float)), SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) got[i].push_back(long(sqlite3_column_int64(q, 0)));
        sqlite3_reset(q);
    });
    sqlite3_finalize(q);
    sqlite3_close(db);
    char extra[128];
    std::snprintf(extra, sizeof extra, "recall@10 %.3f  (load %.0f ms)", recall(truth, got), load);
    print("sqlite-vec exact", d.vectors.size(), l, extra);
}

class Instant final : public Embedder {
public:
    const std::string& model() const override { return model_; }
    std::vector<std::vector<float>> embed(const std::vector<std::string>& texts, const std::function<bool()>&) override {
        std::vector<std::vector<float>> out;
        for (std::size_t i = 0; i < texts.size(); ++i) {
            std::vector<float> v(64, 0.0f);
            v[std::hash<std::string>{}(texts[i]) % 64] = 1.0f;
            out.push_back(std::move(v));
        }
        return out;
    }

private:
    std::string model_ = "instant";
};

// Ingest of `files` Markdown files of 8 sections each (one chunk per section), embedding excluded.
void ingest(std::size_t files) {
    namespace fs = std::filesystem;
    std::string dir = (fs::temp_directory_path() / ("rag-scale-" + std::to_string(getpid()))).string();
    fs::create_directories(dir + "/docs");
    std::mt19937 rng(3);
    const char* words[] = {"honey", "bees", "ocean", "tides", "moon", "rust", "ownership", "borrowing", "garden",
                           "river", "mountain", "language", "compiler", "queen", "colony", "gravity"};
    for (std::size_t f = 0; f < files; ++f) {
        std::ofstream out(dir + "/docs/f" + std::to_string(f) + ".md");
        for (int s = 0; s < 8; ++s) {
            out << "## Section " << s << " of file " << f << "\n\n";
            for (int w = 0; w < 120; ++w) out << words[rng() % 16] << (w % 12 == 11 ? ". " : " ");
            out << "\n\n";
        }
    }
    unsetenv("STATE_DIRECTORY");
    RagSettings s;
    s.state_dir = dir;
    Engine engine(s, std::make_shared<Instant>());
    auto t0 = Clock::now();
    IngestSummary sum = engine.ingest_paths("scale", {dir + "/docs"});
    double secs = ms(Clock::now() - t0) / 1000;
    std::printf("ingest                 %ld files, %ld chunks in %.1f s: %.0f chunks/s (embedding excluded)\n", sum.files,
                sum.chunks, secs, double(sum.chunks) / secs);
    fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::size_t> sizes{10'000, 100'000};
    int dims = 512;
    std::size_t queries = 1000;
    std::string vec0;
    int threads = 2;
    std::size_t ingest_files = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--sizes") {
            sizes.clear();
            for (std::size_t p = 0; p < v.size();) {
                std::size_t c = v.find(',', p);
                sizes.push_back(std::stoul(v.substr(p, c - p)));
                p = c == std::string::npos ? v.size() : c + 1;
            }
        } else if (a == "--dims") dims = std::stoi(v);
        else if (a == "--queries") queries = std::stoul(v);
        else if (a == "--vec0") vec0 = v;
        else if (a == "--threads") threads = std::stoi(v);
        else if (a == "--ingest-files") ingest_files = std::stoul(v);
    }
    if (ingest_files) ingest(ingest_files);
    for (std::size_t n : sizes) {
        Data d = synthetic(n, dims, queries, 11);
        VectorIndex exact(dims);
        for (std::size_t i = 0; i < n; ++i) exact.add(long(i), int(i % 10), d.vectors[i].data());
        std::vector<std::vector<long>> truth(queries);
        Latency le = timed(queries, [&](std::size_t i) { truth[i] = labels(exact.exact(d.queries[i].data(), 10, nullptr)); });
        print("exact", n, le, "memory " + std::to_string(exact.memory_bytes() >> 20) + " MiB");

        VectorIndex hnsw(dims);
        for (std::size_t i = 0; i < n; ++i) hnsw.add(long(i), int(i % 10), d.vectors[i].data());
        HnswOptions o;
        o.threads = threads;
        auto t0 = Clock::now();
        hnsw.adopt(VectorIndex::build(hnsw.snapshot(), o));
        double build = ms(Clock::now() - t0);
        std::vector<std::vector<long>> got(queries);
        Latency lh = timed(queries, [&](std::size_t i) { got[i] = labels(hnsw.search(d.queries[i].data(), 10, nullptr, o.ef_search)); });
        char extra[160];
        std::snprintf(extra, sizeof extra, "recall@10 %.3f  memory %zu MiB  build %.1f s (%d threads)", recall(truth, got),
                      hnsw.memory_bytes() >> 20, build / 1000, threads);
        print("hnsw", n, lh, extra);

        std::vector<char> tenth(10, 0);
        tenth[3] = 1;
        std::vector<std::vector<long>> ftruth(queries), fgot(queries);
        std::size_t fewest = 10;
        for (std::size_t i = 0; i < queries; ++i) ftruth[i] = labels(exact.exact(d.queries[i].data(), 10, &tenth));
        Latency lf = timed(queries, [&](std::size_t i) {
            fgot[i] = labels(hnsw.search(d.queries[i].data(), 10, &tenth, o.ef_search));
            fewest = std::min(fewest, fgot[i].size());
        });
        std::snprintf(extra, sizeof extra, "recall@10 %.3f  fewest hits %zu of 10", recall(ftruth, fgot), fewest);
        print("hnsw, 10% filter", n, lf, extra);

        if (!vec0.empty()) sqlite_vec(vec0, d, dims, truth);
    }
}

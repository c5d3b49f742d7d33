// One vector store's vectors in memory, for nearest-neighbour search by cosine similarity (vectors are
// unit length: a dot product). Exact search while the store is small; HNSW (hnswlib's graph) above a
// threshold. Filters are applied inside the search, never after it: a search for k among the allowed
// groups returns min(k, allowed vectors) hits whenever that many match (the post-filter that returns
// fewer is pgvector's most reported bug). Inside the HNSW walk, disallowed nodes are walked through
// but not returned, and the walk goes on until its beam holds ef allowed ones; a filter selective
// enough that exact search over the allowed vectors costs less than that walk, or a walk that comes to
// cost as much or still comes back short, goes to exact search over the allowed vectors instead.
//
// Not thread-safe by itself: searches may run together (const), add/remove/adopt need the caller's
// exclusive lock. hnswlib stays inside vector_index.cpp.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace agente::rag {

// The dot product of two float vectors: four independent sums of 8 lanes, which compilers vectorize
// (SSE/AVX on x86-64, NEON on ARM); the x86-64 build also carries an AVX2+FMA clone picked at run
// time.
float dot(const float* a, const float* b, std::size_t n);

struct Hit {
    long label;
    float score;    // dot product: cosine similarity for unit vectors
};

struct HnswOptions {
    int m = 16;
    int ef_construction = 200;
    int ef_search = 96;
    int threads = 1;          // building threads
};

class HnswGraph;

class VectorIndex {
public:
    explicit VectorIndex(int dims);
    ~VectorIndex();
    VectorIndex(const VectorIndex&) = delete;
    VectorIndex& operator=(const VectorIndex&) = delete;

    int dims() const { return dims_; }
    std::size_t size() const { return alive_count_; }        // searchable vectors
    std::size_t rows() const { return labels_.size(); }      // searchable and removed
    bool uses_hnsw() const { return graph_ != nullptr; }
    std::size_t memory_bytes() const;

    // `group`: what filters allow or not (the attachment's index). A label already present is
    // replaced.
    void add(long label, int group, const float* v);
    bool remove(long label);
    bool contains(long label) const { return row_of_.count(label) > 0; }
    std::vector<long> labels() const;         // the searchable ones
    long max_label() const { return max_label_; }

    // The k best among vectors whose group is allowed (`allowed[group]` non-zero; nullptr: every
    // group), best first.
    std::vector<Hit> search(const float* q, std::size_t k, const std::vector<char>* allowed, int ef_search) const;
    std::vector<Hit> exact(const float* q, std::size_t k, const std::vector<char>* allowed) const;

    // Building the HNSW graph while searches go on: a snapshot of the rows (under the caller's shared
    // lock), the build from it (no lock: the long part), adopt (exclusive lock: rows added since are
    // inserted, then the flat copy is dropped).
    struct Snapshot {
        int dims = 0;
        std::vector<float> data;
        std::size_t rows = 0;
    };
    Snapshot snapshot() const;
    static std::shared_ptr<HnswGraph> build(const Snapshot& s, const HnswOptions& o);
    void adopt(std::shared_ptr<HnswGraph> graph);

    // A built graph on disk, so that a replaced process need not build it again (index_files.hpp).
    // The graph's rows are this index's rows; row_labels() says which chunk each one is (removed
    // rows included), which is what adopt_saved() matches a loaded graph against.
    void save_graph(const std::string& path) const;   // throws on an I/O error; needs uses_hnsw()
    const std::vector<long>& row_labels() const { return labels_; }
    // A saved graph of `dims`; throws when the file is not a sound one (cut short, another format,
    // another dimension, links out of range), so that a bad file costs a rebuild, never a crash.
    static std::shared_ptr<HnswGraph> load_graph(int dims, const std::string& path);
    // Takes a loaded graph in place of this exact index when it still matches: its rows whose
    // label is here with the very same vector keep their place; rows of chunks gone, or whose vector
    // changed, stay in the graph as removed ones; vectors the graph lacks are inserted. False (and
    // nothing changed) when less than `min_share` of the graph's rows, or of this index's vectors,
    // match: a fresh build is better then.
    bool adopt_saved(std::shared_ptr<HnswGraph> graph, const std::vector<long>& labels_by_row, double min_share);

private:
    const float* vector_of(std::size_t row) const;
    std::vector<Hit> hnsw_search(const float* q, std::size_t k, const std::vector<char>* allowed, std::size_t ef,
                                 std::size_t budget, bool& complete) const;
    bool allowed_row(std::size_t row, const std::vector<char>* allowed) const;

    int dims_;
    std::vector<float> flat_;                 // exact mode: row-major vectors
    std::shared_ptr<HnswGraph> graph_;        // HNSW mode: the graph holds the vectors
    std::vector<long> labels_;                // by row
    std::vector<int> groups_;                 // by row
    std::vector<char> alive_;                 // by row
    std::unordered_map<long, std::size_t> row_of_;
    std::vector<std::size_t> group_counts_;   // alive rows per group
    std::size_t alive_count_ = 0;
    long max_label_ = 0;
};

}  // namespace agente::rag

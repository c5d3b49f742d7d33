// The HNSW graphs of the vector stores on disk, beside rag.sqlite3 (in `rag-index/`), so that a dirty
// worker that replaces another (or a restarted server) loads a store's graph in about the time it
// takes to read it, instead of building it again (minutes for 100,000 chunks on two cores) and
// searching exactly meanwhile.
//
// The graph is a cache of SQLite, never the truth: a store's meta file names its model, dimensions,
// graph file (with its length) and the chunk of each graph row. A loaded graph is matched against the
// vectors SQLite holds now (VectorIndex::adopt_saved): chunks added since are inserted, ones gone or
// changed are left out, and a graph that matches too little, or any file that is missing, cut short or
// unsound, is ignored (logged) and the graph rebuilt as before.
//
// Writes are atomic: the graph goes to a file of a new name, the meta to a temporary name, both are
// fsynced, and the rename of the meta is the commit; the graph the meta named before is then removed.
// A process killed at any point leaves the previous pair or the new one, plus at worst a stray
// temporary file that a later save of that store sweeps.
#pragma once

#include "app/rag/vector_index.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agente::rag {

struct SavedGraph {
    std::shared_ptr<HnswGraph> graph;
    std::vector<long> labels;   // the chunk of each graph row
};

class IndexFiles {
public:
    // `dir`: where rag.sqlite3 is; "" saves and loads nothing.
    explicit IndexFiles(std::string dir);

    // The store's saved graph when one was saved for this model and dimension and is sound.
    std::optional<SavedGraph> load(long store_rowid, const std::string& model, int dims) const;
    // Saves the graph of `index` (which uses HNSW); false (logged) when it could not be written.
    bool save(long store_rowid, const std::string& model, const VectorIndex& index) const;
    // A deleted store's files.
    void remove(long store_rowid) const;

private:
    void sweep(long store_rowid, const std::string& keep) const;
    std::string dir_;
};

}  // namespace agente::rag

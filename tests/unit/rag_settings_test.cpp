// [rag]: values read, defaults, and every error naming server.conf's file:line.
#include "app/rag/settings.hpp"

#include <agente/config.hpp>

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <cstdlib>

namespace agente::rag {
namespace {

toml::table parse(std::string_view text) { return toml::parse(text, std::string_view("server.conf")); }

std::string error_of(std::string_view text) {
    toml::table t = parse(text);
    try {
        if (auto* r = t.get_as<toml::table>("rag")) validate_rag_section(*r, "server.conf");
        load_rag_settings(t, "server.conf");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(RagSettings, DefaultsWithoutATable) {
    RagSettings s = load_rag_settings(parse(""), "server.conf");
    EXPECT_EQ(s.embedding_model, "");
    EXPECT_EQ(s.language, "english");
    EXPECT_EQ(s.rrf_k, 60);
    EXPECT_EQ(s.embedding_weight, 1.0);
    EXPECT_EQ(s.text_weight, 1.0);
}

TEST(RagSettings, ValuesRead) {
    RagSettings s = load_rag_settings(parse(R"(
[models."emb"]
targets = []
[rag]
embedding_model = "emb"
language = "portuguese"
rrf_k = 20
text_weight = 0.5
embedding_batch_size = 16
busy_timeout = 0.5
)"),
                                      "server.conf");
    EXPECT_EQ(s.embedding_model, "emb");
    EXPECT_EQ(s.language, "portuguese");
    EXPECT_EQ(s.rrf_k, 20);
    EXPECT_EQ(s.text_weight, 0.5);
    EXPECT_EQ(s.embedding_batch_size, 16);
    EXPECT_EQ(s.busy_timeout.count(), 500);
}

TEST(RagSettings, ErrorsNameTheLine) {
    EXPECT_EQ(error_of("[rag]\nembedding_model = \"nope\"\n"),
              "server.conf:2: rag.embedding_model: unknown model \"nope\" (add a [models.\"nope\"] table)");
    EXPECT_EQ(error_of("[rag]\nlanguage = \"klingon\"\n").substr(0, 50), "server.conf:2: rag.language: unknown stemmer \"klin");
    EXPECT_EQ(error_of("[rag]\n\nrrf_k = -1\n"), "server.conf:3: rag.rrf_k: expected 0..100000, got -1");
    EXPECT_EQ(error_of("[rag]\nembedding_weight = 0\ntext_weight = 0\n"),
              "server.conf:3: rag.text_weight: embedding_weight and text_weight cannot both be 0");
    EXPECT_EQ(error_of("[rag]\nembeding_model = \"x\"\n"), "server.conf:2: rag.embeding_model: unknown setting");
}

TEST(RagSettings, StateDirectoryPrefersSystemds) {
    RagSettings s;
    s.state_dir = "/srv/rag";
    unsetenv("STATE_DIRECTORY");
    EXPECT_EQ(rag_directory(s), "/srv/rag");
    setenv("STATE_DIRECTORY", "/var/lib/agente-hibrido:/var/lib/other", 1);
    EXPECT_EQ(rag_directory(s), "/var/lib/agente-hibrido");
    unsetenv("STATE_DIRECTORY");
}

TEST(RagSettings, PortugueseAndEnglishStemmersAreThere) {
    EXPECT_TRUE(known_language("english"));
    EXPECT_TRUE(known_language("portuguese"));
    EXPECT_TRUE(known_language("none"));
    EXPECT_FALSE(known_language("klingon"));
}

}  // namespace
}  // namespace agente::rag

// Which sockets serve TLS: gunicorn's rule (certfile makes every address TLS) and the https:// mark
// that serves plain and TLS side by side.
#include "core/bind_address.hpp"

#include <gtest/gtest.h>

using namespace agente;
using namespace agente::core;

namespace {

Config with(std::vector<std::string> bind, std::string certfile = "") {
    Config c;
    c.bind = std::move(bind);
    c.certfile = std::move(certfile);
    return c;
}

}  // namespace

TEST(BindAddress, TheSchemeIsSplitOffInAnyCase) {
    EXPECT_EQ(split_scheme("https://0.0.0.0:8443"), (std::pair{Scheme::https, std::string_view("0.0.0.0:8443")}));
    EXPECT_EQ(split_scheme("HTTPS://[::]:8443"), (std::pair{Scheme::https, std::string_view("[::]:8443")}));
    EXPECT_EQ(split_scheme("http://127.0.0.1:8000"), (std::pair{Scheme::http, std::string_view("127.0.0.1:8000")}));
    EXPECT_EQ(split_scheme("127.0.0.1:8000"), (std::pair{Scheme::bare, std::string_view("127.0.0.1:8000")}));
    EXPECT_EQ(split_scheme("unix:/run/a.sock"), (std::pair{Scheme::bare, std::string_view("unix:/run/a.sock")}));
    EXPECT_EQ(split_scheme("https:/x:1"), (std::pair{Scheme::bare, std::string_view("https:/x:1")}));
}

TEST(BindAddress, WithoutCertfileNothingServesTls) {
    EXPECT_EQ(bind_addresses(with({"127.0.0.1:8000", "unix:/run/a.sock"})),
              (std::vector<BindAddress>{{"127.0.0.1:8000", false}, {"unix:/run/a.sock", false}}));
}

TEST(BindAddress, CertfileAloneMakesEveryTcpAddressTlsAsInGunicorn) {
    EXPECT_EQ(bind_addresses(with({"0.0.0.0:443", "[::]:443"}, "cert.pem")),
              (std::vector<BindAddress>{{"0.0.0.0:443", true}, {"[::]:443", true}}));
}

TEST(BindAddress, OnceAnAddressSaysHttpsTheUnmarkedOnesStayPlain) {
    EXPECT_EQ(bind_addresses(with({"127.0.0.1:8000", "https://0.0.0.0:8443"}, "cert.pem")),
              (std::vector<BindAddress>{{"127.0.0.1:8000", false}, {"0.0.0.0:8443", true}}));
}

TEST(BindAddress, HttpMarksAPlainAddressBesideGunicornsRule) {
    EXPECT_EQ(bind_addresses(with({"http://127.0.0.1:8000", "0.0.0.0:8443"}, "cert.pem")),
              (std::vector<BindAddress>{{"127.0.0.1:8000", false}, {"0.0.0.0:8443", true}}));
}

TEST(BindAddress, AUnixSocketIsNeverTls) {
    EXPECT_EQ(bind_addresses(with({"unix:/run/a.sock", "0.0.0.0:8443"}, "cert.pem")),
              (std::vector<BindAddress>{{"unix:/run/a.sock", false}, {"0.0.0.0:8443", true}}));
}

TEST(BindAddress, TheMasterBindsTheAddressesWithoutTheirScheme) {
    EXPECT_EQ(socket_addresses(with({"http://127.0.0.1:8000", "https://0.0.0.0:8443", "unix:/a"}, "c.pem")),
              (std::vector<std::string>{"127.0.0.1:8000", "0.0.0.0:8443", "unix:/a"}));
}

TEST(BindAddress, ASocketThatBindDoesNotNameFollowsTheRuleForBareAddresses) {
    // systemd passed it and `bind` is unset (or names other sockets).
    EXPECT_TRUE(serves_tls(with({"127.0.0.1:8000"}, "cert.pem"), "10.0.0.1:443"));
    EXPECT_FALSE(serves_tls(with({"127.0.0.1:8000"}), "10.0.0.1:443"));
    EXPECT_FALSE(serves_tls(with({"https://127.0.0.1:8443"}, "cert.pem"), "10.0.0.1:443"));
    EXPECT_FALSE(serves_tls(with({"127.0.0.1:8000"}, "cert.pem"), "unix:/run/a.sock"));
    EXPECT_TRUE(serves_tls(with({"https://127.0.0.1:8443"}, "cert.pem"), "127.0.0.1:8443"));
    EXPECT_FALSE(serves_tls(with({"127.0.0.1:8000", "https://127.0.0.1:8443"}, "cert.pem"), "127.0.0.1:8000"));
}

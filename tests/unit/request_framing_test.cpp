// The framing rules over made-up request heads: no socket, no parser. Each test is one rule of
// RFC 9112 (sections 2.2, 3.2, 6.1-6.3) as we apply it, and where we differ from gunicorn 22+.
#include "core/request_framing.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

using namespace agente::core;

namespace {

// A request head built field by field: `te`, `cl` and `host` take every line of their field.
struct Head {
    std::string_view method = "POST";
    unsigned version = 11;
    std::string_view target = "/echo";
    std::vector<std::string_view> te, cl, host{"example.com"};

    Framing frame() const { return frame_request(RequestHead{method, version, target, te, cl, host}); }
};

Head with_te(std::initializer_list<std::string_view> te) {
    Head h;
    h.te = te;
    return h;
}

Head with_cl(std::initializer_list<std::string_view> cl) {
    Head h;
    h.cl = cl;
    return h;
}

Head with_host(std::initializer_list<std::string_view> host, unsigned version = 11) {
    Head h;
    h.method = "GET";
    h.version = version;
    h.host = host;
    return h;
}

Head with_target(std::string_view target, std::string_view method = "GET") {
    Head h;
    h.method = method;
    h.target = target;
    return h;
}

// The status of a refusal, checking that it closes the connection as every refusal must.
int refused(const Framing& f) {
    EXPECT_FALSE(f.ok());
    EXPECT_TRUE(f.close) << f.reason;
    EXPECT_FALSE(f.reason.empty());
    return f.status;
}

}  // namespace

TEST(RequestFraming, WithoutTransferEncodingOrContentLengthThereIsNoBody) {
    Framing f = Head{}.frame();
    EXPECT_TRUE(f.ok());
    EXPECT_FALSE(f.close);
    EXPECT_EQ(f.body, BodyFraming::none);
}

TEST(RequestFraming, AContentLengthOfDigitsFramesTheBody) {
    Framing f = with_cl({"42"}).frame();
    EXPECT_TRUE(f.ok());
    EXPECT_EQ(f.body, BodyFraming::length);
    EXPECT_EQ(f.length, 42u);
    EXPECT_EQ(with_cl({"0"}).frame().body, BodyFraming::none);
    EXPECT_EQ(with_cl({"007"}).frame().length, 7u);
    EXPECT_EQ(with_cl({"18446744073709551615"}).frame().length, 18446744073709551615u);
}

TEST(RequestFraming, AContentLengthThatIsNotJustDigitsIsRefused) {
    for (std::string_view v : {"", "abc", "-1", "+5", "5 ", "0x10", "1e3", "5;", "18446744073709551616"})
        EXPECT_EQ(refused(with_cl({v}).frame()), 400) << '"' << v << '"';
}

TEST(RequestFraming, SeveralContentLengthsAreRefusedEvenWhenEqual) {
    // RFC 9110 section 8.6 lets a recipient take "5, 5" as 5; gunicorn refuses it, and so do we: a
    // proxy in front may have read the list otherwise.
    EXPECT_EQ(refused(with_cl({"5", "5"}).frame()), 400);
    EXPECT_EQ(refused(with_cl({"5", "6"}).frame()), 400);
    EXPECT_EQ(refused(with_cl({"5, 5"}).frame()), 400);
    EXPECT_EQ(refused(with_cl({"5, 6"}).frame()), 400);
}

TEST(RequestFraming, ChunkedAloneFramesTheBodyInAnyCaseAndAmongEmptyListElements) {
    for (auto te : {std::vector<std::string_view>{"chunked"}, {"Chunked"}, {"CHUNKED"}, {" chunked "},
                    {", chunked,"}, {"", "chunked"}}) {
        Head h;
        h.te = te;
        Framing f = h.frame();
        EXPECT_TRUE(f.ok()) << f.reason;
        EXPECT_FALSE(f.close);
        EXPECT_EQ(f.body, BodyFraming::chunked);
    }
}

TEST(RequestFraming, ATransferEncodingWhoseLastCodingIsNotChunkedIsRefused) {
    // RFC 9112 section 6.3: the length cannot be known, and Beast would frame such a body by the
    // Content-Length or read it as the next request: where a smuggled request hides.
    for (std::string_view te : {"xchunked", "identity", "gzip", "chunked, identity", "chunked, gzip", "chunkedx",
                                "chunked;", "chunked; a=b", "\"chunked\"", "", ",", "chunked/1"})
        EXPECT_EQ(refused(with_te({te}).frame()), 400) << '"' << te << '"';
    EXPECT_EQ(refused(with_te({"chunked", "identity"}).frame()), 400);  // the lines are one list
}

TEST(RequestFraming, ChunkedTwiceIsRefused) {
    // Stacked chunking is never meant; Beast does not even read it as chunked.
    EXPECT_EQ(refused(with_te({"chunked, chunked"}).frame()), 400);
    EXPECT_EQ(refused(with_te({"chunked", "chunked"}).frame()), 400);
}

TEST(RequestFraming, AnotherCodingBeforeChunkedIsNotImplemented) {
    // Well framed, but we decode no coding other than chunked: 501 (RFC 9112 section 6.1), and
    // closed. gunicorn passes gzip, deflate and compress through still encoded, and drops identity.
    for (std::string_view te : {"gzip, chunked", "deflate,chunked", "identity, chunked", "x-custom ; q=1, chunked"})
        EXPECT_EQ(refused(with_te({te}).frame()), 501) << te;
    EXPECT_EQ(refused(with_te({"gzip", "chunked"}).frame()), 501);
}

TEST(RequestFraming, TransferEncodingWithContentLengthIsRefusedWhateverEither) {
    // RFC 9112 section 6.2 lets a server read it as chunked and close after; we refuse it, as
    // gunicorn does: a proxy in front that framed it by the length would be out of step with us.
    Head h = with_te({"chunked"});
    h.cl = {"5"};
    EXPECT_EQ(refused(h.frame()), 400);
    h.te = {"xchunked"};
    EXPECT_EQ(refused(h.frame()), 400);
    h.te = {"identity"};
    h.cl = {"0"};
    EXPECT_EQ(refused(h.frame()), 400);
}

TEST(RequestFraming, TransferEncodingInAnHttp10RequestIsRefused) {
    // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings, so its framing is faulty.
    Head h = with_te({"chunked"});
    h.version = 10;
    EXPECT_EQ(refused(h.frame()), 400);
}

TEST(RequestFraming, AnHttp11RequestNeedsExactlyOneHost) {
    EXPECT_EQ(refused(with_host({}).frame()), 400);
    EXPECT_EQ(refused(with_host({"a.example", "a.example"}).frame()), 400);
    EXPECT_EQ(refused(with_host({"a.example", "b.example"}, 10).frame()), 400);  // never two, any version
    EXPECT_TRUE(with_host({}, 10).frame().ok());  // HTTP/1.0 had no Host
}

TEST(RequestFraming, HostIsAnAuthorityWithoutUserinfo) {
    for (std::string_view host : {"example.com", "example.com:8080", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8000",
                                  "[v1.future]", "xn--bcher-kva.example", "ex%41mple", "localhost:", ""}) {
        Framing f = with_host({host}).frame();
        EXPECT_TRUE(f.ok()) << '"' << host << "\": " << f.reason;
        EXPECT_EQ(f.host, host);
    }
    for (std::string_view host : {"a b", "user@example.com", "example.com:port", "[::1", "::1", "a/b", "a?b",
                                  "exa\"mple", "example.com:80:80", "%zz"})
        EXPECT_EQ(refused(with_host({host}).frame()), 400) << '"' << host << '"';
}

TEST(RequestFraming, AnOriginFormTargetIsServedAsSent) {
    Framing f = with_target("/v1/models?x=1").frame();
    EXPECT_TRUE(f.ok());
    EXPECT_TRUE(f.target.empty());   // the session routes on the target itself
    EXPECT_EQ(f.host, "example.com");
}

TEST(RequestFraming, AnAbsoluteFormTargetIsServedByItsPathAndItsAuthorityWinsOverHost) {
    // RFC 9112 section 3.2.2.
    Framing f = with_target("http://api.example:8080/v1/models?x=1").frame();
    EXPECT_TRUE(f.ok()) << f.reason;
    EXPECT_EQ(f.target, "/v1/models?x=1");
    EXPECT_EQ(f.host, "api.example:8080");
    EXPECT_EQ(with_target("HTTPS://api.example/health").frame().target, "/health");
    EXPECT_EQ(with_target("http://api.example").frame().target, "/");         // an empty path is "/"
    EXPECT_EQ(with_target("http://api.example?q=1").frame().target, "/?q=1");
}

TEST(RequestFraming, AnAbsoluteFormTargetMustBeAnHttpUriWithAHost) {
    for (std::string_view t : {"ftp://api.example/x", "http:///health", "http://user@api.example/health",
                               "http://api.example/health#frag", "health", "http//api.example/", "api.example:80"})
        EXPECT_EQ(refused(with_target(t).frame()), 400) << t;
}

TEST(RequestFraming, AnAbsoluteFormTargetStillNeedsOneValidHost) {
    Head h = with_target("http://api.example/health");
    h.host = {};
    EXPECT_EQ(refused(h.frame()), 400);
    h.host = {"a b"};
    EXPECT_EQ(refused(h.frame()), 400);
}

TEST(RequestFraming, TheAsteriskIsForOptionsAndAuthorityFormForConnect) {
    EXPECT_TRUE(with_target("*", "OPTIONS").frame().ok());
    EXPECT_EQ(refused(with_target("*", "GET").frame()), 400);
    EXPECT_TRUE(with_target("api.example:443", "CONNECT").frame().ok());  // routed, and no route takes it
}

TEST(RequestFraming, TheFramingIsJudgedBeforeTheHost) {
    // A smuggling attempt is refused as such, whatever else is wrong with the head.
    Head h = with_te({"xchunked"});
    h.host = {};
    EXPECT_EQ(h.frame().reason, with_te({"xchunked"}).frame().reason);
}

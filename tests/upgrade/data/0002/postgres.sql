--
-- PostgreSQL database dump
--

\restrict MmunFIL43ldsT3icYpgNrUfe0Wcse4WhFiBzk12KSnH4YlvMAW7CBBLUDNIrtON

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.accounts (
    id character varying(32) NOT NULL,
    thumbprint character varying(64) NOT NULL,
    jwk json NOT NULL,
    status character varying(16) NOT NULL,
    contact json NOT NULL,
    created timestamp with time zone NOT NULL
);


--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: authzs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.authzs (
    id character varying(32) NOT NULL,
    order_id character varying(32) NOT NULL,
    "position" integer NOT NULL,
    identifier character varying(255) NOT NULL,
    status character varying(16) NOT NULL,
    expires timestamp with time zone NOT NULL
);


--
-- Name: certificates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.certificates (
    id character varying(32) NOT NULL,
    order_id character varying(32) NOT NULL,
    serial character varying(64) NOT NULL,
    chain_pem text NOT NULL,
    not_after timestamp with time zone NOT NULL,
    created timestamp with time zone NOT NULL,
    revoked timestamp with time zone,
    revocation_reason integer,
    upstream_revoked timestamp with time zone
);


--
-- Name: challenges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.challenges (
    id character varying(32) NOT NULL,
    authz_id character varying(32) NOT NULL,
    type character varying(16) NOT NULL,
    token character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    validated timestamp with time zone,
    error json,
    validation_records json NOT NULL
);


--
-- Name: dns_records; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dns_records (
    id integer NOT NULL,
    order_id character varying(32) NOT NULL,
    zone character varying(255) NOT NULL,
    fqdn character varying(255) NOT NULL,
    value character varying(255) NOT NULL,
    created timestamp with time zone NOT NULL
);


--
-- Name: dns_records_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dns_records_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dns_records_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dns_records_id_seq OWNED BY public.dns_records.id;


--
-- Name: jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs (
    id integer NOT NULL,
    kind character varying(32) NOT NULL,
    subject_id character varying(64) NOT NULL,
    run_at timestamp with time zone NOT NULL,
    lease_until timestamp with time zone,
    attempts integer NOT NULL,
    generation integer NOT NULL,
    last_error text,
    created timestamp with time zone NOT NULL
);


--
-- Name: jobs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.jobs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: jobs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.jobs_id_seq OWNED BY public.jobs.id;


--
-- Name: nonces; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.nonces (
    value character varying(64) NOT NULL,
    expires timestamp with time zone NOT NULL
);


--
-- Name: orders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.orders (
    id character varying(32) NOT NULL,
    account_id character varying(32) NOT NULL,
    status character varying(16) NOT NULL,
    expires timestamp with time zone NOT NULL,
    identifiers json NOT NULL,
    not_before timestamp with time zone,
    not_after timestamp with time zone,
    error json,
    csr bytea,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    upstream_order_url text,
    upstream_status character varying(16),
    upstream_error json
);


--
-- Name: dns_records id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dns_records ALTER COLUMN id SET DEFAULT nextval('public.dns_records_id_seq'::regclass);


--
-- Name: jobs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs ALTER COLUMN id SET DEFAULT nextval('public.jobs_id_seq'::regclass);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.accounts (id, thumbprint, jwk, status, contact, created) FROM stdin;
frozenclient00000000	wZp5IFzcEaZl-uYEX5K3WClgj1kyOWUCY64vrYBN15Y	{"x": "11ZgQ6nea1NNtVv0l4lReY6vBTcU_OMe12rGezH5iig", "y": "D-Pu30IZtwvlqwSHRi5VGfZe2DghJYkpE7E4CfJt9-A", "crv": "P-256", "kty": "EC"}	valid	["mailto:ops@example.test"]	2026-11-08 01:55:55+00
teamaccount0000000000	nurxrFJ2yt1Wzz5IReRSRJl6NY11sImMiJhgUgSbU6Y	{"x": "W97pMrFhFktf2IxRCznpjqdRcTgHjHtlRD_UwlHIlxc", "y": "GxztPoLuiZD_VFojjQSQWaJumk_V0p1YoWYOBdZW24M", "crv": "P-256", "kty": "EC"}	valid	[]	2026-11-08 01:55:55+00
goneaccount00000000000	fMUUa-e_BCdj0RFZJ152MYCTv5RCUNYq5Y0IIWt-aFg	{"x": "YcIU4xW0TIEzPDueiUFyMOA3xndEOYiuoknNdlaxvgY", "y": "86UXkOQRdeCyHm_rw-nXwNUq6eudxQUevWojkAPPyR4", "crv": "P-256", "kty": "EC"}	deactivated	[]	2026-11-08 01:55:55+00
\.


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
0002
\.


--
-- Data for Name: authzs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.authzs (id, order_id, "position", identifier, status, expires) FROM stdin;
pendingorderauthz0	pendingorder000000000	0	pending.example.test	pending	2026-12-15 01:55:55+00
readyorder00authz0	readyorder0000000000	0	ready.example.test	valid	2026-12-15 01:55:55+00
processingorauthz0	processingorder00000	0	upgrade.example.test	valid	2026-12-15 01:55:55+00
processingorauthz1	processingorder00000	1	www.upgrade.example.test	valid	2026-12-15 01:55:55+00
invalidorderauthz0	invalidorder00000000	0	team.example.test	invalid	2026-12-15 01:55:55+00
firstorder00authz0	firstorder0000000000	0	upgrade.example.test	valid	2026-12-15 01:55:55+00
firstorder00authz1	firstorder0000000000	1	www.upgrade.example.test	valid	2026-12-15 01:55:55+00
secondorder0authz0	secondorder000000000	0	upgrade.example.test	valid	2026-12-15 01:55:55+00
secondorder0authz1	secondorder000000000	1	www.upgrade.example.test	valid	2026-12-15 01:55:55+00
revokedorderauthz0	revokedorder00000000	0	revoked.example.test	valid	2026-12-15 01:55:55+00
\.


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.certificates (id, order_id, serial, chain_pem, not_after, created, revoked, revocation_reason, upstream_revoked) FROM stdin;
firstcert00000000000	firstorder0000000000	40a0c76fb129b3e8466a2eab547ed43cbf85c972	-----BEGIN CERTIFICATE-----\nMIIBhjCCASugAwIBAgIUQKDHb7Eps+hGai6rVH7UPL+FyXIwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYwOTE5MDE1\nNTU1WhcNMjYxMjE4MDE1NTU1WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nsovWmJmWmJbg2ecRPkKX1jKxDWIbCRdXLH3sxwC3Ph0jY9Ak5kmL1+T1MagZmP0J\nx7ocZnrhrPvHOmkMl9y61qNhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBR4\n5jt3lP0/1okTLixJoY2s3HdRTjAKBggqhkjOPQQDAgNJADBGAiEAzQMQhElJwj8N\nEwY89lrAwBAm1uWgMffpZkRaWhAZdkACIQC+Z9NUHlP5M52E2EytlObdwxzn+z+E\ndRFQNNcJrRqwIA==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeTCCAR6gAwIBAgIUKoX4lCOebP4Y+1dzSZ/QViVqEJEwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNTU1WhcNMzYxMjA1MDE1NTU1WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMIVcC4WYyt1uEJYTRhD\nVDCJPW5LtxjhiY/kpE8cD99OWvnnZF65DBodqrhWeVY0ouKKYSKNMgjE3W2cxLma\nqUOjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFHjmO3eU/T/WiRMuLEmh\njazcd1FOMAoGCCqGSM49BAMCA0kAMEYCIQDUsON/de7kVnAq/Rhsmnev2X3Tose+\ntIc3QZZNuVuUAwIhAJD90ltHMa6VqECMLtY56mvAqRozGfuHyYkDppnUuJ0s\n-----END CERTIFICATE-----\n	2026-12-18 01:55:55+00	2026-11-08 01:55:55+00	\N	\N	\N
secondcert0000000000	secondorder000000000	112a3cd25599cba6b912053e2ca3794703907406	-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUESo80lWZy6a5EgU+LKN5RwOQdAYwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMjA3MDE1\nNTU1WhcNMjcwMzA3MDE1NTU1WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n2pTXXVZqhyypM5pkbDYoJjurYDqsDzVhWdvI4nebWhGvIZxXsmiZyDSAgUFLDkkF\nMYi+uebjKWvuUGsqQ8eG1qNhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBR4\n5jt3lP0/1okTLixJoY2s3HdRTjAKBggqhkjOPQQDAgNIADBFAiAug8j0aPX+wg4u\nCahwD8N9cQf5MtYgtD5dzsjTuvnO7AIhAOFKJ3+AfYxf9DZwCgwsNaCzJC22XNS+\nRdCjp3fny+tG\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeTCCAR6gAwIBAgIUKoX4lCOebP4Y+1dzSZ/QViVqEJEwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNTU1WhcNMzYxMjA1MDE1NTU1WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMIVcC4WYyt1uEJYTRhD\nVDCJPW5LtxjhiY/kpE8cD99OWvnnZF65DBodqrhWeVY0ouKKYSKNMgjE3W2cxLma\nqUOjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFHjmO3eU/T/WiRMuLEmh\njazcd1FOMAoGCCqGSM49BAMCA0kAMEYCIQDUsON/de7kVnAq/Rhsmnev2X3Tose+\ntIc3QZZNuVuUAwIhAJD90ltHMa6VqECMLtY56mvAqRozGfuHyYkDppnUuJ0s\n-----END CERTIFICATE-----\n	2027-03-07 01:55:55+00	2026-12-08 01:55:55+00	\N	\N	\N
revokedcert000000000	revokedorder00000000	2744ee6af8641862d242784ee47963124e322cb8	-----BEGIN CERTIFICATE-----\nMIIBazCCARGgAwIBAgIUJ0TuavhkGGLSQnhO5HljEk4yLLgwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMTI4MDE1\nNTU1WhcNMjcwMjI2MDE1NTU1WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nY/zOFfm6EVwcXUzp3bP5BdVbS/8+63Cy2RjMc+Uaa4/LBm5uaGzG3HCK96e1KPeL\n8K5Fz256Y6ZIJ2PYkk5GfqNHMEUwIgYDVR0RAQH/BBgwFoIUcmV2b2tlZC5leGFt\ncGxlLnRlc3QwHwYDVR0jBBgwFoAUeOY7d5T9P9aJEy4sSaGNrNx3UU4wCgYIKoZI\nzj0EAwIDSAAwRQIgU8GCTjkRqFsigZFCJg22Zme2bfmGxh93BBc6DrbKnM0CIQDI\nsufxkfz1oH95SPcb8q9d+SlplMSeCOa/mmT3tPheaw==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeTCCAR6gAwIBAgIUKoX4lCOebP4Y+1dzSZ/QViVqEJEwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNTU1WhcNMzYxMjA1MDE1NTU1WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMIVcC4WYyt1uEJYTRhD\nVDCJPW5LtxjhiY/kpE8cD99OWvnnZF65DBodqrhWeVY0ouKKYSKNMgjE3W2cxLma\nqUOjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFHjmO3eU/T/WiRMuLEmh\njazcd1FOMAoGCCqGSM49BAMCA0kAMEYCIQDUsON/de7kVnAq/Rhsmnev2X3Tose+\ntIc3QZZNuVuUAwIhAJD90ltHMa6VqECMLtY56mvAqRozGfuHyYkDppnUuJ0s\n-----END CERTIFICATE-----\n	2027-02-26 01:55:55+00	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	4	2026-12-08 01:55:55+00
\.


--
-- Data for Name: challenges; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.challenges (id, authz_id, type, token, status, validated, error, validation_records) FROM stdin;
pendingorderchall0	pendingorderauthz0	http-01	token-pendingorder-0	pending	\N	null	[]
readyorder00chall0	readyorder00authz0	http-01	token-readyorder00-0	valid	2026-12-08 01:55:55+00	null	[{"url": "http://ready.example.test/.well-known/acme-challenge/t", "hostname": "ready.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
processingorchall0	processingorauthz0	http-01	token-processingor-0	valid	2026-12-08 01:55:55+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
processingorchall1	processingorauthz1	http-01	token-processingor-1	valid	2026-12-08 01:55:55+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
invalidorderchall0	invalidorderauthz0	http-01	token-invalidorder-0	invalid	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "not the key authorization", "status": 403}	[{"url": "http://*.team.example.test/.well-known/acme-challenge/t", "hostname": "*.team.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
firstorder00chall0	firstorder00authz0	http-01	token-firstorder00-0	valid	2026-12-08 01:55:55+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
firstorder00chall1	firstorder00authz1	http-01	token-firstorder00-1	valid	2026-12-08 01:55:55+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
secondorder0chall0	secondorder0authz0	http-01	token-secondorder0-0	valid	2026-12-08 01:55:55+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
secondorder0chall1	secondorder0authz1	http-01	token-secondorder0-1	valid	2026-12-08 01:55:55+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
revokedorderchall0	revokedorderauthz0	http-01	token-revokedorder-0	valid	2026-12-08 01:55:55+00	null	[{"url": "http://revoked.example.test/.well-known/acme-challenge/t", "hostname": "revoked.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
\.


--
-- Data for Name: dns_records; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.dns_records (id, order_id, zone, fqdn, value, created) FROM stdin;
1	processingorder00000	example.test	_acme-challenge.upgrade.example.test	dGhlLXR4dC12YWx1ZS1vZi10aGUtZnJvemVuLXNldA	2026-12-08 01:55:57.808334+00
\.


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.jobs (id, kind, subject_id, run_at, lease_until, attempts, generation, last_error, created) FROM stdin;
1	order	processingorder00000	2026-12-15 01:55:55+00	\N	2	3	upstream: connection refused	2026-11-08 01:55:55+00
2	validate	pendingorderchall0	2026-12-15 01:55:55+00	\N	0	0	\N	2026-12-08 01:55:55+00
\.


--
-- Data for Name: nonces; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.nonces (value, expires) FROM stdin;
frozen-nonce-fresh	2026-12-15 01:55:55+00
frozen-nonce-stale	2026-11-08 01:55:55+00
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.orders (id, account_id, status, expires, identifiers, not_before, not_after, error, csr, created, updated, upstream_order_url, upstream_status, upstream_error) FROM stdin;
pendingorder000000000	frozenclient00000000	pending	2026-12-15 01:55:55+00	["pending.example.test"]	\N	\N	\N	\N	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	\N	\N	\N
readyorder0000000000	frozenclient00000000	ready	2026-12-15 01:55:55+00	["ready.example.test"]	\N	\N	\N	\N	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	\N	\N	\N
processingorder00000	frozenclient00000000	processing	2026-12-15 01:55:55+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000498f868bbeeaaaa52b216228ebdbde0f5a69ce4f56c5a82d72a54003f620bc57d7e1068bf06e63265ca9eec93145f896ad22cd4f3a08d095d3c9ea697c98b1d73a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100c9c55da7050ec0859f4aa6929b63ee3fed7bea916324cae511315095a836e071022100aa040a9b802eeb367ff16ddbb3f579db19297ff3eef58c87f87acec68e8fc1bf	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	https://acme.example.test/order/2	processing	\N
invalidorder00000000	teamaccount0000000000	invalid	2026-12-15 01:55:55+00	["*.team.example.test"]	\N	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "wrong", "status": 403}	\N	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	\N	\N	{"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many"}
firstorder0000000000	frozenclient00000000	valid	2026-12-15 01:55:55+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000498f868bbeeaaaa52b216228ebdbde0f5a69ce4f56c5a82d72a54003f620bc57d7e1068bf06e63265ca9eec93145f896ad22cd4f3a08d095d3c9ea697c98b1d73a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100c9c55da7050ec0859f4aa6929b63ee3fed7bea916324cae511315095a836e071022100aa040a9b802eeb367ff16ddbb3f579db19297ff3eef58c87f87acec68e8fc1bf	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	https://acme.example.test/order/1	valid	\N
secondorder000000000	frozenclient00000000	valid	2026-12-15 01:55:55+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000498f868bbeeaaaa52b216228ebdbde0f5a69ce4f56c5a82d72a54003f620bc57d7e1068bf06e63265ca9eec93145f896ad22cd4f3a08d095d3c9ea697c98b1d73a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100c9c55da7050ec0859f4aa6929b63ee3fed7bea916324cae511315095a836e071022100aa040a9b802eeb367ff16ddbb3f579db19297ff3eef58c87f87acec68e8fc1bf	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	https://acme.example.test/order/1	valid	\N
revokedorder00000000	frozenclient00000000	valid	2026-12-15 01:55:55+00	["revoked.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000498f868bbeeaaaa52b216228ebdbde0f5a69ce4f56c5a82d72a54003f620bc57d7e1068bf06e63265ca9eec93145f896ad22cd4f3a08d095d3c9ea697c98b1d73a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100c9c55da7050ec0859f4aa6929b63ee3fed7bea916324cae511315095a836e071022100aa040a9b802eeb367ff16ddbb3f579db19297ff3eef58c87f87acec68e8fc1bf	2026-11-08 01:55:55+00	2026-12-08 01:55:55+00	https://acme.example.test/order/1	valid	\N
\.


--
-- Name: dns_records_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.dns_records_id_seq', 1, true);


--
-- Name: jobs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.jobs_id_seq', 2, true);


--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);


--
-- Name: accounts accounts_thumbprint_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_thumbprint_key UNIQUE (thumbprint);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: authzs authzs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.authzs
    ADD CONSTRAINT authzs_pkey PRIMARY KEY (id);


--
-- Name: certificates certificates_order_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_order_id_key UNIQUE (order_id);


--
-- Name: certificates certificates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_pkey PRIMARY KEY (id);


--
-- Name: challenges challenges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.challenges
    ADD CONSTRAINT challenges_pkey PRIMARY KEY (id);


--
-- Name: dns_records dns_records_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dns_records
    ADD CONSTRAINT dns_records_pkey PRIMARY KEY (id);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: nonces nonces_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.nonces
    ADD CONSTRAINT nonces_pkey PRIMARY KEY (value);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: ix_authzs_order_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_authzs_order_id ON public.authzs USING btree (order_id);


--
-- Name: ix_certificates_serial; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_certificates_serial ON public.certificates USING btree (serial);


--
-- Name: ix_challenges_authz_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_challenges_authz_id ON public.challenges USING btree (authz_id);


--
-- Name: ix_dns_records_order_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_dns_records_order_id ON public.dns_records USING btree (order_id);


--
-- Name: ix_jobs_kind_subject; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_jobs_kind_subject ON public.jobs USING btree (kind, subject_id);


--
-- Name: ix_jobs_run_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_run_at ON public.jobs USING btree (run_at);


--
-- Name: ix_nonces_expires; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_nonces_expires ON public.nonces USING btree (expires);


--
-- Name: ix_orders_account_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_account_id ON public.orders USING btree (account_id);


--
-- Name: ix_orders_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_status ON public.orders USING btree (status);


--
-- Name: authzs authzs_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.authzs
    ADD CONSTRAINT authzs_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);


--
-- Name: certificates certificates_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);


--
-- Name: challenges challenges_authz_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.challenges
    ADD CONSTRAINT challenges_authz_id_fkey FOREIGN KEY (authz_id) REFERENCES public.authzs(id);


--
-- Name: dns_records dns_records_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dns_records
    ADD CONSTRAINT dns_records_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);


--
-- Name: orders orders_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);


--
-- PostgreSQL database dump complete
--

\unrestrict MmunFIL43ldsT3icYpgNrUfe0Wcse4WhFiBzk12KSnH4YlvMAW7CBBLUDNIrtON


--
-- PostgreSQL database dump
--

\restrict BVly9rfHkB3I5OSoIEsMZFFXS2Brl21zyC8bogL39SVZGIqO2Xf4yl7k2JHWZUM

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
    expires timestamp with time zone NOT NULL,
    wildcard boolean DEFAULT false NOT NULL
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
frozenclient00000000	5PtMGiKYsXYaWPxX76DKy6HUJ2uYQD9MJbyduIKqBtk	{"x": "muHKQ6nAGYyctm9pB5701u9lTOdhlff849O0x5ldWUM", "y": "t_qMTMZY9--vj1WrNzwcl5wBWDgAi5aT88nloGMlkW0", "crv": "P-256", "kty": "EC"}	valid	["mailto:ops@example.test"]	2026-11-08 01:56:05+00
teamaccount0000000000	M-KmwbSPE8mtRaNbW5YbQVDT6nT9W2l0Fx8smT18XZ4	{"x": "KD7UeN4NIzcOQszebaYWQcDJjnMd6-fpxAqaH5nmAsw", "y": "zGo0XIt9XOHCnMChrcb0VcmyboUhFD0u9fI6FIEJf8o", "crv": "P-256", "kty": "EC"}	valid	[]	2026-11-08 01:56:05+00
goneaccount00000000000	MO8y4dJK1bfeZ_us_0yWxFr0y31RrvcPe7lUg_Kj09s	{"x": "kosPVPzpmKceFbcucjNX7KHBJ0zURU8iFIKNc1jguAM", "y": "FHFLCUJxfbAp03KK5xfVLalreUNUwlRBKdmvBbhC3Jc", "crv": "P-256", "kty": "EC"}	deactivated	[]	2026-11-08 01:56:05+00
\.


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
0005
\.


--
-- Data for Name: authzs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.authzs (id, order_id, "position", identifier, status, expires, wildcard) FROM stdin;
pendingorderauthz0	pendingorder000000000	0	pending.example.test	pending	2026-12-15 01:56:05+00	f
readyorder00authz0	readyorder0000000000	0	ready.example.test	valid	2026-12-15 01:56:05+00	f
processingorauthz0	processingorder00000	0	upgrade.example.test	valid	2026-12-15 01:56:05+00	f
processingorauthz1	processingorder00000	1	www.upgrade.example.test	valid	2026-12-15 01:56:05+00	f
invalidorderauthz0	invalidorder00000000	0	team.example.test	invalid	2026-12-15 01:56:05+00	t
firstorder00authz0	firstorder0000000000	0	upgrade.example.test	valid	2026-12-15 01:56:05+00	f
firstorder00authz1	firstorder0000000000	1	www.upgrade.example.test	valid	2026-12-15 01:56:05+00	f
secondorder0authz0	secondorder000000000	0	upgrade.example.test	valid	2026-12-15 01:56:05+00	f
secondorder0authz1	secondorder000000000	1	www.upgrade.example.test	valid	2026-12-15 01:56:05+00	f
revokedorderauthz0	revokedorder00000000	0	revoked.example.test	valid	2026-12-15 01:56:05+00	f
\.


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.certificates (id, order_id, serial, chain_pem, not_after, created, revoked, revocation_reason, upstream_revoked) FROM stdin;
firstcert00000000000	firstorder0000000000	4e72c496833d25bb4a6a545c27a6c9a5230b93b8	-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUTnLEloM9JbtKalRcJ6bJpSMLk7gwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYwOTE5MDE1\nNjA1WhcNMjYxMjE4MDE1NjA1WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\npVJO4yOW6I98+EYLRXUMEeDHUEDkLYJb9H6FtXG2b06DBeKU2YHFP93N2pWEB802\n2SHbqmyn5/J2cT+w04KdwqNhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBQU\nG6kaCuowDNDLEQ5GtGId4XGLKDAKBggqhkjOPQQDAgNIADBFAiEAuhjJlu+g2aWD\nOYVtRF3n/rQkV5I4Lqnd7NDZZ46ol0gCIBqmtMoyk/rRQXtVpXrdjQeSDggqpppL\n7XViOcwAPAWp\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeTCCAR6gAwIBAgIUUEbJC+1m4DCGi9qK2Og57ZDe7IMwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjA1WhcNMzYxMjA1MDE1NjA1WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKX8W8ahEuFxVZN2SdCo\nB0fFhAeScPAukuyKQolnoghPiq+rGRfU26hriI0lztQLc1BYRKhlDpeP2jDHK9kK\n6P+jMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFBQbqRoK6jAM0MsRDka0\nYh3hcYsoMAoGCCqGSM49BAMCA0kAMEYCIQCY7EVRq9fEmPlyhXlbxLG1Hz/OJv1G\nS95pZS8nzLO5BgIhAIkAukzYtWs60uQ1PM5naUL9cuifmySR73jUurpQqu+e\n-----END CERTIFICATE-----\n	2026-12-18 01:56:05+00	2026-11-08 01:56:05+00	\N	\N	\N
secondcert0000000000	secondorder000000000	4ff0165d3e5c012337064283a1ef6f2c563307c1	-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUT/AWXT5cASM3BkKDoe9vLFYzB8EwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMjA3MDE1\nNjA1WhcNMjcwMzA3MDE1NjA1WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n2o8iSHSE9X3NqQ15aI1WGsw/GvtKwkthvGhej2pcXquDX7E+LXBMxD9QonNiCHBN\nPGsMnah8/0z3darrIM7UyqNhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBQU\nG6kaCuowDNDLEQ5GtGId4XGLKDAKBggqhkjOPQQDAgNIADBFAiEA3uwbWhuYifQv\njwoNNbVZZru2u1TjC2wsDrm1vNNUT1gCIFN5iknxLWg/6S+PeLeDXn9sbq5gQ3zX\nLOQo/WndWQOL\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeTCCAR6gAwIBAgIUUEbJC+1m4DCGi9qK2Og57ZDe7IMwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjA1WhcNMzYxMjA1MDE1NjA1WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKX8W8ahEuFxVZN2SdCo\nB0fFhAeScPAukuyKQolnoghPiq+rGRfU26hriI0lztQLc1BYRKhlDpeP2jDHK9kK\n6P+jMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFBQbqRoK6jAM0MsRDka0\nYh3hcYsoMAoGCCqGSM49BAMCA0kAMEYCIQCY7EVRq9fEmPlyhXlbxLG1Hz/OJv1G\nS95pZS8nzLO5BgIhAIkAukzYtWs60uQ1PM5naUL9cuifmySR73jUurpQqu+e\n-----END CERTIFICATE-----\n	2027-03-07 01:56:05+00	2026-12-08 01:56:05+00	\N	\N	\N
revokedcert000000000	revokedorder00000000	feb0309be27face5924aaea708cd6fb177a0269	-----BEGIN CERTIFICATE-----\nMIIBazCCARGgAwIBAgIUD+sDCb4n+s5ZJKrqcIzW+xd6AmkwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMTI4MDE1\nNjA1WhcNMjcwMjI2MDE1NjA1WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nCil+Hu9ITDVFPSOSkfC+Cc2/mALOUVTmlahSpgLES/xSzVJKu14DxQ20qUsL//Kv\nu5IJ9LUop6mY8fjiCGn7e6NHMEUwIgYDVR0RAQH/BBgwFoIUcmV2b2tlZC5leGFt\ncGxlLnRlc3QwHwYDVR0jBBgwFoAUFBupGgrqMAzQyxEORrRiHeFxiygwCgYIKoZI\nzj0EAwIDSAAwRQIhAPAQqmodX4fYzFj3din6wGr0nfux8nU+fbladrfwjnNGAiAS\neiV32STNExxetIaax5fd20IASvdx7QHrbrOF5k534A==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeTCCAR6gAwIBAgIUUEbJC+1m4DCGi9qK2Og57ZDe7IMwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjA1WhcNMzYxMjA1MDE1NjA1WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKX8W8ahEuFxVZN2SdCo\nB0fFhAeScPAukuyKQolnoghPiq+rGRfU26hriI0lztQLc1BYRKhlDpeP2jDHK9kK\n6P+jMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFBQbqRoK6jAM0MsRDka0\nYh3hcYsoMAoGCCqGSM49BAMCA0kAMEYCIQCY7EVRq9fEmPlyhXlbxLG1Hz/OJv1G\nS95pZS8nzLO5BgIhAIkAukzYtWs60uQ1PM5naUL9cuifmySR73jUurpQqu+e\n-----END CERTIFICATE-----\n	2027-02-26 01:56:05+00	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	4	2026-12-08 01:56:05+00
\.


--
-- Data for Name: challenges; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.challenges (id, authz_id, type, token, status, validated, error, validation_records) FROM stdin;
pendingorderchall0	pendingorderauthz0	http-01	token-pendingorder-0	pending	\N	null	[]
readyorder00chall0	readyorder00authz0	http-01	token-readyorder00-0	valid	2026-12-08 01:56:05+00	null	[{"url": "http://ready.example.test/.well-known/acme-challenge/t", "hostname": "ready.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
processingorchall0	processingorauthz0	http-01	token-processingor-0	valid	2026-12-08 01:56:05+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
processingorchall1	processingorauthz1	http-01	token-processingor-1	valid	2026-12-08 01:56:05+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
invalidorderchall0	invalidorderauthz0	http-01	token-invalidorder-0	invalid	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "not the key authorization", "status": 403}	[{"url": "http://*.team.example.test/.well-known/acme-challenge/t", "hostname": "*.team.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
firstorder00chall0	firstorder00authz0	http-01	token-firstorder00-0	valid	2026-12-08 01:56:05+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
firstorder00chall1	firstorder00authz1	http-01	token-firstorder00-1	valid	2026-12-08 01:56:05+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
secondorder0chall0	secondorder0authz0	http-01	token-secondorder0-0	valid	2026-12-08 01:56:05+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
secondorder0chall1	secondorder0authz1	http-01	token-secondorder0-1	valid	2026-12-08 01:56:05+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
revokedorderchall0	revokedorderauthz0	http-01	token-revokedorder-0	valid	2026-12-08 01:56:05+00	null	[{"url": "http://revoked.example.test/.well-known/acme-challenge/t", "hostname": "revoked.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]
\.


--
-- Data for Name: dns_records; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.dns_records (id, order_id, zone, fqdn, value, created) FROM stdin;
1	processingorder00000	example.test	_acme-challenge.upgrade.example.test	dGhlLXR4dC12YWx1ZS1vZi10aGUtZnJvemVuLXNldA	2026-12-08 01:56:07.053909+00
\.


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.jobs (id, kind, subject_id, run_at, lease_until, attempts, generation, last_error, created) FROM stdin;
1	order	processingorder00000	2026-12-15 01:56:05+00	\N	2	3	upstream: connection refused	2026-11-08 01:56:05+00
2	validate	pendingorderchall0	2026-12-15 01:56:05+00	\N	0	0	\N	2026-12-08 01:56:05+00
\.


--
-- Data for Name: nonces; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.nonces (value, expires) FROM stdin;
frozen-nonce-fresh	2026-12-15 01:56:05+00
frozen-nonce-stale	2026-11-08 01:56:05+00
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.orders (id, account_id, status, expires, identifiers, not_before, not_after, error, csr, created, updated, upstream_order_url, upstream_status, upstream_error) FROM stdin;
pendingorder000000000	frozenclient00000000	pending	2026-12-15 01:56:05+00	["pending.example.test"]	\N	\N	\N	\N	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	\N	\N	\N
readyorder0000000000	frozenclient00000000	ready	2026-12-15 01:56:05+00	["ready.example.test"]	\N	\N	\N	\N	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	\N	\N	\N
processingorder00000	frozenclient00000000	processing	2026-12-15 01:56:05+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004fbe0fb3ed281dfda7d7cb97b2bdf21fe288df3ac00edc1af5c7b1abaf50a82985e245edb00d45ee60a94472e6d5bf36e4b7458a042549490d6171737567c120ea04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220684dec0eebc156980f910ae20acc835403b2ea1f0991ec5d762f56b6fc082d0a0220332f262d8cc4d352d98e0c44ebe443071885c26c6a94c357f27048eb7247896b	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	https://acme.example.test/order/2	processing	\N
invalidorder00000000	teamaccount0000000000	invalid	2026-12-15 01:56:05+00	["*.team.example.test"]	\N	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "wrong", "status": 403}	\N	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	\N	\N	{"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many"}
firstorder0000000000	frozenclient00000000	valid	2026-12-15 01:56:05+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004fbe0fb3ed281dfda7d7cb97b2bdf21fe288df3ac00edc1af5c7b1abaf50a82985e245edb00d45ee60a94472e6d5bf36e4b7458a042549490d6171737567c120ea04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220684dec0eebc156980f910ae20acc835403b2ea1f0991ec5d762f56b6fc082d0a0220332f262d8cc4d352d98e0c44ebe443071885c26c6a94c357f27048eb7247896b	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	https://acme.example.test/order/1	valid	\N
secondorder000000000	frozenclient00000000	valid	2026-12-15 01:56:05+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004fbe0fb3ed281dfda7d7cb97b2bdf21fe288df3ac00edc1af5c7b1abaf50a82985e245edb00d45ee60a94472e6d5bf36e4b7458a042549490d6171737567c120ea04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220684dec0eebc156980f910ae20acc835403b2ea1f0991ec5d762f56b6fc082d0a0220332f262d8cc4d352d98e0c44ebe443071885c26c6a94c357f27048eb7247896b	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	https://acme.example.test/order/1	valid	\N
revokedorder00000000	frozenclient00000000	valid	2026-12-15 01:56:05+00	["revoked.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004fbe0fb3ed281dfda7d7cb97b2bdf21fe288df3ac00edc1af5c7b1abaf50a82985e245edb00d45ee60a94472e6d5bf36e4b7458a042549490d6171737567c120ea04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220684dec0eebc156980f910ae20acc835403b2ea1f0991ec5d762f56b6fc082d0a0220332f262d8cc4d352d98e0c44ebe443071885c26c6a94c357f27048eb7247896b	2026-11-08 01:56:05+00	2026-12-08 01:56:05+00	https://acme.example.test/order/1	valid	\N
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
-- Name: ix_authzs_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_authzs_status ON public.authzs USING btree (status);


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
-- Name: orders orders_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);


--
-- PostgreSQL database dump complete
--

\unrestrict BVly9rfHkB3I5OSoIEsMZFFXS2Brl21zyC8bogL39SVZGIqO2Xf4yl7k2JHWZUM


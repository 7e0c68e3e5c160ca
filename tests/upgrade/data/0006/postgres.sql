--
-- PostgreSQL database dump
--

\restrict mw3dyeSbDGTPSezn5JbFpVGLjPhd5UbB42xysKBaCVZyYqx8y2YpdBWTQwepf6C

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
    validation_records json NOT NULL,
    tries integer DEFAULT 0 NOT NULL
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
    created timestamp with time zone NOT NULL,
    state character varying(16) NOT NULL,
    owner_kind character varying(32) DEFAULT 'order'::character varying NOT NULL,
    run character varying(32),
    written timestamp with time zone,
    served timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    error text
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
    subject_id character varying(255) NOT NULL,
    run_at timestamp with time zone NOT NULL,
    lease_until timestamp with time zone,
    attempts integer NOT NULL,
    generation integer NOT NULL,
    last_error text,
    created timestamp with time zone NOT NULL,
    owner character varying(32)
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
    updated timestamp with time zone NOT NULL
);


--
-- Name: upstream_accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_accounts (
    directory_url character varying(1000) NOT NULL,
    key_pem text NOT NULL,
    key_encrypted boolean NOT NULL,
    account_url text,
    created timestamp with time zone NOT NULL
);


--
-- Name: upstream_orders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_orders (
    id integer NOT NULL,
    owner_kind character varying(32) NOT NULL,
    owner_id character varying(64) NOT NULL,
    names json NOT NULL,
    profile character varying(64),
    replaces character varying(255),
    url text,
    stage character varying(16) NOT NULL,
    status character varying(16),
    challenges json NOT NULL,
    error json,
    stage_since timestamp with time zone NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL
);


--
-- Name: upstream_orders_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.upstream_orders_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: upstream_orders_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.upstream_orders_id_seq OWNED BY public.upstream_orders.id;


--
-- Name: dns_records id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dns_records ALTER COLUMN id SET DEFAULT nextval('public.dns_records_id_seq'::regclass);


--
-- Name: jobs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs ALTER COLUMN id SET DEFAULT nextval('public.jobs_id_seq'::regclass);


--
-- Name: upstream_orders id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_orders ALTER COLUMN id SET DEFAULT nextval('public.upstream_orders_id_seq'::regclass);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.accounts (id, thumbprint, jwk, status, contact, created) FROM stdin;
frozenclient00000000	MNP9RBbDBLxMcclRyE1xCqLm04Snv2cwBzqiZ7_EX7w	{"x": "ccCQORYqmop2mILQVl7beJejIJQURiDhBFFz3RTPbYo", "y": "BdXR5MluSZ-xH80U4QcElCoQ-83ekvOjFoIRevY5_y8", "crv": "P-256", "kty": "EC"}	valid	["mailto:ops@example.test"]	2026-11-08 01:56:09+00
teamaccount0000000000	5d6DirtFgB-WAsx63w3tuVS-pTWmRd-pEIPF2Ru-X0o	{"x": "l_o7OCe0oMnPVCZidBB6v0KL_7FVpe4tpJPlqufzkXA", "y": "EIHVKDAJr1y1Cm8Rao6EZGo8dYJ1zmO2GTsoNV632Wg", "crv": "P-256", "kty": "EC"}	valid	[]	2026-11-08 01:56:09+00
goneaccount00000000000	TpRNxEdnpp7Ly8pfoDi5PzTn9fOFA8s1d-_G8B9oW5I	{"x": "KQ1cwDRZrh6rgjQlbo4y-Mj_nQQJ-sKavxxrU4Ym3_o", "y": "J8bLCiHD0PgTobvWTsZrTOY-lHfZKWCKajP0kgyHWBs", "crv": "P-256", "kty": "EC"}	deactivated	[]	2026-11-08 01:56:09+00
\.


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
0006
\.


--
-- Data for Name: authzs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.authzs (id, order_id, "position", identifier, status, expires, wildcard) FROM stdin;
pendingorderauthz0	pendingorder000000000	0	pending.example.test	pending	2026-12-15 01:56:09+00	f
readyorder00authz0	readyorder0000000000	0	ready.example.test	valid	2026-12-15 01:56:09+00	f
processingorauthz0	processingorder00000	0	upgrade.example.test	valid	2026-12-15 01:56:09+00	f
processingorauthz1	processingorder00000	1	www.upgrade.example.test	valid	2026-12-15 01:56:09+00	f
invalidorderauthz0	invalidorder00000000	0	team.example.test	invalid	2026-12-15 01:56:09+00	t
firstorder00authz0	firstorder0000000000	0	upgrade.example.test	valid	2026-12-15 01:56:09+00	f
firstorder00authz1	firstorder0000000000	1	www.upgrade.example.test	valid	2026-12-15 01:56:09+00	f
secondorder0authz0	secondorder000000000	0	upgrade.example.test	valid	2026-12-15 01:56:09+00	f
secondorder0authz1	secondorder000000000	1	www.upgrade.example.test	valid	2026-12-15 01:56:09+00	f
revokedorderauthz0	revokedorder00000000	0	revoked.example.test	valid	2026-12-15 01:56:09+00	f
\.


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.certificates (id, order_id, serial, chain_pem, not_after, created, revoked, revocation_reason, upstream_revoked) FROM stdin;
firstcert00000000000	firstorder0000000000	73b0458b08c4676ca5fe4ab42e56ff6c6c7c24a1	-----BEGIN CERTIFICATE-----\nMIIBhjCCASugAwIBAgIUc7BFiwjEZ2yl/kq0Llb/bGx8JKEwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYwOTE5MDE1\nNjA5WhcNMjYxMjE4MDE1NjA5WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nWmVCwjPJtG9YZ9tiYSVeukOj39wIXVvDgEz1Iq76Xs4hbOLZHAtHSzyNsUT1LvB1\nhdFVaOomtOPstbMoT2hfKqNhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBRh\nOFvGHdU2HEZ94eNWRhZ0fm+X0TAKBggqhkjOPQQDAgNJADBGAiEAjjO7xjO7fx2x\nkKWidTv0TDQ0mAFXKvkkkeTwkV2d8v4CIQC+7SSP3mrH+UcW9fyOusLvZNEx74vF\nSgAxsAwIYyZ9ig==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeDCCAR6gAwIBAgIUVVdea40+TYlJfab3SIPhVM+vaRwwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjA5WhcNMzYxMjA1MDE1NjA5WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPmt1fIkFS+jiFIxw/Kx\nFqpRb3hJDMBz1+a3dgifZWaJ6bJGB/D8313It8VbnNW2TvIE6+6Rboq1I+9ncrjK\nT6SjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFGE4W8Yd1TYcRn3h41ZG\nFnR+b5fRMAoGCCqGSM49BAMCA0gAMEUCIEjCj1dMDxpJnqL+KhQHuvobeUx/sJL9\n3sTy75L8CAsRAiEApZT5J2V0p6aqJRRsRdvzSpiyI3mX06AJxUHrcoPYR8I=\n-----END CERTIFICATE-----\n	2026-12-18 01:56:09+00	2026-11-08 01:56:09+00	\N	\N	\N
secondcert0000000000	secondorder000000000	408ae6aad4150e1087262473396dd6de15241df2	-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUQIrmqtQVDhCHJiRzOW3W3hUkHfIwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMjA3MDE1\nNjA5WhcNMjcwMzA3MDE1NjA5WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n8FOkdBQ35yELh2Lj3ZKiCOYi9iHRvwIiCQBGQn6jLkuu115aBdt/Xcm+6vr5p5rR\nZtaXrksUE6x4SutciSFaSaNhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBRh\nOFvGHdU2HEZ94eNWRhZ0fm+X0TAKBggqhkjOPQQDAgNIADBFAiBZnAJ37iEjhG8X\nUVIlZT1xKcTSP8Oqlljb6q1DsGSIPwIhAK8ADSzeO0D80puM6wqNoZeU7VPVq4MF\np03ThvK0aeYo\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeDCCAR6gAwIBAgIUVVdea40+TYlJfab3SIPhVM+vaRwwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjA5WhcNMzYxMjA1MDE1NjA5WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPmt1fIkFS+jiFIxw/Kx\nFqpRb3hJDMBz1+a3dgifZWaJ6bJGB/D8313It8VbnNW2TvIE6+6Rboq1I+9ncrjK\nT6SjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFGE4W8Yd1TYcRn3h41ZG\nFnR+b5fRMAoGCCqGSM49BAMCA0gAMEUCIEjCj1dMDxpJnqL+KhQHuvobeUx/sJL9\n3sTy75L8CAsRAiEApZT5J2V0p6aqJRRsRdvzSpiyI3mX06AJxUHrcoPYR8I=\n-----END CERTIFICATE-----\n	2027-03-07 01:56:09+00	2026-12-08 01:56:09+00	\N	\N	\N
revokedcert000000000	revokedorder00000000	2e3ed69e9ddaf6e754c61e346e18641450f6837c	-----BEGIN CERTIFICATE-----\nMIIBajCCARGgAwIBAgIULj7Wnp3a9udUxh40bhhkFFD2g3wwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMTI4MDE1\nNjA5WhcNMjcwMjI2MDE1NjA5WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nv++jppsahRSWZu/nDtG3tpwBXtEndhkWJRjGfqPaZAYwWPLzToMafz0tLqzfQQta\nlPnqi8UnicaXChGYwOymhKNHMEUwIgYDVR0RAQH/BBgwFoIUcmV2b2tlZC5leGFt\ncGxlLnRlc3QwHwYDVR0jBBgwFoAUYThbxh3VNhxGfeHjVkYWdH5vl9EwCgYIKoZI\nzj0EAwIDRwAwRAIgECAIPV64uQoWMZ8ALWADZT5zxYMPSUYfrN2iZcCWRsoCIH8Q\nVj32aXmHJbarxZjIs5NPuRp/rGJrVutAvf2ppzFa\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBeDCCAR6gAwIBAgIUVVdea40+TYlJfab3SIPhVM+vaRwwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjA5WhcNMzYxMjA1MDE1NjA5WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPmt1fIkFS+jiFIxw/Kx\nFqpRb3hJDMBz1+a3dgifZWaJ6bJGB/D8313It8VbnNW2TvIE6+6Rboq1I+9ncrjK\nT6SjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFGE4W8Yd1TYcRn3h41ZG\nFnR+b5fRMAoGCCqGSM49BAMCA0gAMEUCIEjCj1dMDxpJnqL+KhQHuvobeUx/sJL9\n3sTy75L8CAsRAiEApZT5J2V0p6aqJRRsRdvzSpiyI3mX06AJxUHrcoPYR8I=\n-----END CERTIFICATE-----\n	2027-02-26 01:56:09+00	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00	4	2026-12-08 01:56:09+00
\.


--
-- Data for Name: challenges; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.challenges (id, authz_id, type, token, status, validated, error, validation_records, tries) FROM stdin;
pendingorderchall0	pendingorderauthz0	http-01	token-pendingorder-0	pending	\N	null	[]	0
readyorder00chall0	readyorder00authz0	http-01	token-readyorder00-0	valid	2026-12-08 01:56:09+00	null	[{"url": "http://ready.example.test/.well-known/acme-challenge/t", "hostname": "ready.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
processingorchall0	processingorauthz0	http-01	token-processingor-0	valid	2026-12-08 01:56:09+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
processingorchall1	processingorauthz1	http-01	token-processingor-1	valid	2026-12-08 01:56:09+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
invalidorderchall0	invalidorderauthz0	http-01	token-invalidorder-0	invalid	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "not the key authorization", "status": 403}	[{"url": "http://*.team.example.test/.well-known/acme-challenge/t", "hostname": "*.team.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
firstorder00chall0	firstorder00authz0	http-01	token-firstorder00-0	valid	2026-12-08 01:56:09+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
firstorder00chall1	firstorder00authz1	http-01	token-firstorder00-1	valid	2026-12-08 01:56:09+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
secondorder0chall0	secondorder0authz0	http-01	token-secondorder0-0	valid	2026-12-08 01:56:09+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
secondorder0chall1	secondorder0authz1	http-01	token-secondorder0-1	valid	2026-12-08 01:56:09+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
revokedorderchall0	revokedorderauthz0	http-01	token-revokedorder-0	valid	2026-12-08 01:56:09+00	null	[{"url": "http://revoked.example.test/.well-known/acme-challenge/t", "hostname": "revoked.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
\.


--
-- Data for Name: dns_records; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.dns_records (id, order_id, zone, fqdn, value, created, state, owner_kind, run, written, served, attempts, error) FROM stdin;
1	processingorder00000	example.test	_acme-challenge.upgrade.example.test	dGhlLXR4dC12YWx1ZS1vZi10aGUtZnJvemVuLXNldA	2026-12-08 01:56:11.352715+00	served	order	run0	2026-12-08 01:56:09+00	2026-12-08 01:56:09+00	0	\N
\.


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.jobs (id, kind, subject_id, run_at, lease_until, attempts, generation, last_error, created, owner) FROM stdin;
1	order	processingorder00000	2026-12-15 01:56:09+00	\N	2	3	upstream: connection refused	2026-11-08 01:56:09+00	\N
2	validate	pendingorderchall0	2026-12-15 01:56:09+00	\N	0	0	\N	2026-12-08 01:56:09+00	\N
\.


--
-- Data for Name: nonces; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.nonces (value, expires) FROM stdin;
frozen-nonce-fresh	2026-12-15 01:56:09+00
frozen-nonce-stale	2026-11-08 01:56:09+00
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.orders (id, account_id, status, expires, identifiers, not_before, not_after, error, csr, created, updated) FROM stdin;
pendingorder000000000	frozenclient00000000	pending	2026-12-15 01:56:09+00	["pending.example.test"]	\N	\N	\N	\N	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00
readyorder0000000000	frozenclient00000000	ready	2026-12-15 01:56:09+00	["ready.example.test"]	\N	\N	\N	\N	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00
processingorder00000	frozenclient00000000	processing	2026-12-15 01:56:09+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201073081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004022e88631d482192fe5c837b825fdad72779799799aca6503752692c0e04aed4bed3dea921515f1b0fb9f67e3552e842f9d422ae3aa5997b002ab1cd534d8a18a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020348003045022013e5ff63bfdeb2a8a2825d494e0d6c180c6106910506eb8198a062b4feca70da022100b78a30de7665d438d3f239f94c35978f89ea1ea3a552b48e7ae4ad52da2eab51	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00
invalidorder00000000	teamaccount0000000000	invalid	2026-12-15 01:56:09+00	["*.team.example.test"]	\N	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "wrong", "status": 403}	\N	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00
firstorder0000000000	frozenclient00000000	valid	2026-12-15 01:56:09+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201073081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004022e88631d482192fe5c837b825fdad72779799799aca6503752692c0e04aed4bed3dea921515f1b0fb9f67e3552e842f9d422ae3aa5997b002ab1cd534d8a18a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020348003045022013e5ff63bfdeb2a8a2825d494e0d6c180c6106910506eb8198a062b4feca70da022100b78a30de7665d438d3f239f94c35978f89ea1ea3a552b48e7ae4ad52da2eab51	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00
secondorder000000000	frozenclient00000000	valid	2026-12-15 01:56:09+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201073081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004022e88631d482192fe5c837b825fdad72779799799aca6503752692c0e04aed4bed3dea921515f1b0fb9f67e3552e842f9d422ae3aa5997b002ab1cd534d8a18a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020348003045022013e5ff63bfdeb2a8a2825d494e0d6c180c6106910506eb8198a062b4feca70da022100b78a30de7665d438d3f239f94c35978f89ea1ea3a552b48e7ae4ad52da2eab51	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00
revokedorder00000000	frozenclient00000000	valid	2026-12-15 01:56:09+00	["revoked.example.test"]	\N	\N	\N	\\x308201073081ae02010030003059301306072a8648ce3d020106082a8648ce3d03010703420004022e88631d482192fe5c837b825fdad72779799799aca6503752692c0e04aed4bed3dea921515f1b0fb9f67e3552e842f9d422ae3aa5997b002ab1cd534d8a18a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020348003045022013e5ff63bfdeb2a8a2825d494e0d6c180c6106910506eb8198a062b4feca70da022100b78a30de7665d438d3f239f94c35978f89ea1ea3a552b48e7ae4ad52da2eab51	2026-11-08 01:56:09+00	2026-12-08 01:56:09+00
\.


--
-- Data for Name: upstream_accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_accounts (directory_url, key_pem, key_encrypted, account_url, created) FROM stdin;
https://acme.example.test/directory	-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgn0AGe2RQJ+3LGYL8\nqMPYbGa9tp2dbKxVAQMj4B5CgqChRANCAARIGbpxBZ1Ame4nmnZ1nQM/ZvEbqHM9\nKgXIy/Waq46qRqqTRgn9RhVULcstKd8H9+6qEEMHzKiTCh8Hc/lP6Zog\n-----END PRIVATE KEY-----\n	f	https://acme.example.test/acct/1	2026-11-08 01:56:09+00
\.


--
-- Data for Name: upstream_orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_orders (id, owner_kind, owner_id, names, profile, replaces, url, stage, status, challenges, error, stage_since, created, updated) FROM stdin;
1	order	processingorder00000	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	https://acme.example.test/order/2	authorize	pending	[{"authz": "https://acme.example.test/authz/1", "url": "https://acme.example.test/chall/1"}]	\N	2026-12-08 01:56:09+00	2026-12-08 01:56:09+00	2026-12-08 01:56:09+00
2	order	secondorder000000000	["upgrade.example.test", "www.upgrade.example.test"]	default	YThbxh3VNhxGfeHjVkYWdH5vl9E.c7BFiwjEZ2yl_kq0Llb_bGx8JKE	https://acme.example.test/order/3	done	valid	[]	\N	2026-12-08 01:56:09+00	2026-12-08 01:56:09+00	2026-12-08 01:56:09+00
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
-- Name: upstream_orders_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.upstream_orders_id_seq', 2, true);


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
-- Name: upstream_accounts upstream_accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_accounts
    ADD CONSTRAINT upstream_accounts_pkey PRIMARY KEY (directory_url);


--
-- Name: upstream_orders upstream_orders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_orders
    ADD CONSTRAINT upstream_orders_pkey PRIMARY KEY (id);


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
-- Name: ix_dns_records_zone_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_dns_records_zone_state ON public.dns_records USING btree (zone, state);


--
-- Name: ix_jobs_kind_subject; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_jobs_kind_subject ON public.jobs USING btree (kind, subject_id);


--
-- Name: ix_jobs_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_owner ON public.jobs USING btree (owner);


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
-- Name: ix_upstream_orders_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_upstream_orders_owner ON public.upstream_orders USING btree (owner_kind, owner_id);


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

\unrestrict mw3dyeSbDGTPSezn5JbFpVGLjPhd5UbB42xysKBaCVZyYqx8y2YpdBWTQwepf6C


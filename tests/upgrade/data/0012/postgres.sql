--
-- PostgreSQL database dump
--

\restrict 9OW3yEak5daDicEOUVfT8CYK3sn7OREHixcKXIRWodFGhkaDLfnHg8gKp4r497q

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
    created timestamp with time zone NOT NULL,
    eab_kid character varying(64),
    blocked timestamp with time zone
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
-- Name: budget_buckets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.budget_buckets (
    "limit" character varying(32) NOT NULL,
    key character varying(255) NOT NULL,
    tokens double precision NOT NULL,
    updated timestamp with time zone NOT NULL,
    label character varying(255)
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
    upstream_revoked timestamp with time zone,
    ari_id character varying(255),
    replaced_by character varying(32),
    ari_start timestamp with time zone,
    ari_end timestamp with time zone,
    ari_explanation text,
    ari_refresh timestamp with time zone
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
-- Name: eab_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.eab_keys (
    kid character varying(64) NOT NULL,
    name character varying(64) NOT NULL,
    hmac_key character varying(128) NOT NULL,
    allow json NOT NULL,
    wildcards boolean NOT NULL,
    sources json NOT NULL,
    requester_in_dns boolean NOT NULL,
    orders_per_hour integer,
    created timestamp with time zone NOT NULL,
    revoked timestamp with time zone,
    profiles json NOT NULL
);


--
-- Name: issued_sets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.issued_sets (
    set_key character varying(48) NOT NULL,
    issued timestamp with time zone NOT NULL
);


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
-- Name: notifications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notifications (
    id integer NOT NULL,
    event character varying(32) NOT NULL,
    subject character varying(255) NOT NULL,
    period character varying(64) NOT NULL,
    channel character varying(16) NOT NULL,
    payload json NOT NULL,
    created timestamp with time zone NOT NULL,
    sent timestamp with time zone,
    error text
);


--
-- Name: notifications_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.notifications_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: notifications_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.notifications_id_seq OWNED BY public.notifications.id;


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
    requester character varying(64),
    budget character varying(16),
    profile character varying(64),
    replaces character varying(255),
    renewal boolean DEFAULT false NOT NULL
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
-- Name: upstream_pauses; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_pauses (
    name character varying(255) NOT NULL,
    unpause_url text,
    since timestamp with time zone NOT NULL
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
-- Name: notifications id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications ALTER COLUMN id SET DEFAULT nextval('public.notifications_id_seq'::regclass);


--
-- Name: upstream_orders id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_orders ALTER COLUMN id SET DEFAULT nextval('public.upstream_orders_id_seq'::regclass);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.accounts (id, thumbprint, jwk, status, contact, created, eab_kid, blocked) FROM stdin;
frozenclient00000000	B96rK2NAlDpHSM_6JygN-6I7a8KacKzl-Qaww_hKsa4	{"x": "sNAbQnCrX--BLMmzbcqTXatc_KLW00qu_saAhvGz0io", "y": "ZBwhNUcwaaqRu9ClmJnW-lRABexEsW-C-ZeMcMChTrQ", "crv": "P-256", "kty": "EC"}	valid	["mailto:ops@example.test"]	2026-11-08 02:13:12+00	\N	\N
teamaccount0000000000	dUNdHm1LlTmJlirqpAWlf7cZZ2E_wWX3pqL0OLYTSzE	{"x": "Q6Ihw__ILBvrJQnGL0A4xpDuz6sdECIapaDOfOgWj4Q", "y": "Crb80KN7Kj977-OqwsLOmtVIdh2EUVwbsyzBITeUry4", "crv": "P-256", "kty": "EC"}	valid	[]	2026-11-08 02:13:12+00	team-kid	2026-12-08 02:13:12+00
goneaccount00000000000	XcaRqZKzIQj1yqSxsK2jzmugTPEaaLlR-PQIEsex_78	{"x": "VNMRa9P64UcsGVNDPhH0ZYbWLwB6_Hz5QMz0DWD5fxQ", "y": "Ms4j6GdUHj9XsJjiiN2WxSErCzHBRezMPPTgRlXxxJo", "crv": "P-256", "kty": "EC"}	deactivated	[]	2026-11-08 02:13:12+00	\N	\N
\.


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
0012
\.


--
-- Data for Name: authzs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.authzs (id, order_id, "position", identifier, status, expires, wildcard) FROM stdin;
pendingorderauthz0	pendingorder000000000	0	pending.example.test	pending	2026-12-15 02:13:12+00	f
readyorder00authz0	readyorder0000000000	0	ready.example.test	valid	2026-12-15 02:13:12+00	f
processingorauthz0	processingorder00000	0	upgrade.example.test	valid	2026-12-15 02:13:12+00	f
processingorauthz1	processingorder00000	1	www.upgrade.example.test	valid	2026-12-15 02:13:12+00	f
invalidorderauthz0	invalidorder00000000	0	team.example.test	invalid	2026-12-15 02:13:12+00	t
firstorder00authz0	firstorder0000000000	0	upgrade.example.test	valid	2026-12-15 02:13:12+00	f
firstorder00authz1	firstorder0000000000	1	www.upgrade.example.test	valid	2026-12-15 02:13:12+00	f
secondorder0authz0	secondorder000000000	0	upgrade.example.test	valid	2026-12-15 02:13:12+00	f
secondorder0authz1	secondorder000000000	1	www.upgrade.example.test	valid	2026-12-15 02:13:12+00	f
revokedorderauthz0	revokedorder00000000	0	revoked.example.test	valid	2026-12-15 02:13:12+00	f
\.


--
-- Data for Name: budget_buckets; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.budget_buckets ("limit", key, tokens, updated, label) FROM stdin;
orders_per_account	https://acme.example.test/acct/1	299.5	2026-12-08 02:13:12+00	\N
certs_per_domain	example.test	48	2026-12-08 02:13:12+00	example.test
\.


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.certificates (id, order_id, serial, chain_pem, not_after, created, revoked, revocation_reason, upstream_revoked, ari_id, replaced_by, ari_start, ari_end, ari_explanation, ari_refresh) FROM stdin;
firstcert00000000000	firstorder0000000000	6287f5736d5ad1e103e5ceba365255c36deabade	-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUYof1c21a0eED5c66NlJVw23qut4wCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYwOTE5MDIx\nMzEyWhcNMjYxMjE4MDIxMzEyWjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\ngcgJYf4vYoP32L7yjLqho1+woPi4/6/oe7lWqWiKzLG2CAmLmKUp9xj0UXGWCd05\nqqA4hXfaNSfv94OXoVPkxqNhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBSj\nzSmVELG4d6koCN8MfK09P6BumzAKBggqhkjOPQQDAgNIADBFAiBuRFEzBTlw6Rg2\nJPqr2EVyMNnxJbAzyYL3l3d0lk255AIhALDgLMqL/G1t2wXsK3iPIQKdYaX8k22Q\nLmwX8p2j/Iey\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBdzCCAR6gAwIBAgIUeWA5bRRDEvmpt3jyWSa5xSE+ulIwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDIx\nMzEyWhcNMzYxMjA1MDIxMzEyWjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABE8bNR/DWXFtH9N5NRTL\nE9Ai2JlxtmXwjrSrDv1z68yukmMH5KQS780PVxAZ/f+f43Ox8LOHG9poPNESjEot\nIFSjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFKPNKZUQsbh3qSgI3wx8\nrT0/oG6bMAoGCCqGSM49BAMCA0cAMEQCIGkVcnD28HWv/CJ4D5MXy7Qhbpv9//SQ\nLDrQ2QcIVorFAiACR/gFA3M8oQGXXPWpTgzbf5kcOBKEc/89W/WVJlmRgg==\n-----END CERTIFICATE-----\n	2026-12-18 02:13:12+00	2026-11-08 02:13:12+00	\N	\N	\N	o80plRCxuHepKAjfDHytPT-gbps.Yof1c21a0eED5c66NlJVw23qut4	secondorder000000000	\N	\N	\N	\N
secondcert0000000000	secondorder000000000	50b61e883e43d1b5a8d9e01dcd37bb5ed46438cb	-----BEGIN CERTIFICATE-----\nMIIBhjCCASugAwIBAgIUULYeiD5D0bWo2eAdzTe7XtRkOMswCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMjA3MDIx\nMzEyWhcNMjcwMzA3MDIxMzEyWjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\ncFwkUKYGVGEXc/tI4Vk2nEVB5wjJ6Q9lSEwqB0Nsq4uoLraF1litIl2uCrz6FvvN\nVXi1UQydabga/TqtUYtUt6NhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBSj\nzSmVELG4d6koCN8MfK09P6BumzAKBggqhkjOPQQDAgNJADBGAiEA0UFCQB5XWvpo\nUL6rX1VunJR3z59ZEYl07+chZNrlxhkCIQC+Ayqvj1Bp5Ants0nFPJT6Lx6quOpk\nGlbhXTzT4xGlMQ==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBdzCCAR6gAwIBAgIUeWA5bRRDEvmpt3jyWSa5xSE+ulIwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDIx\nMzEyWhcNMzYxMjA1MDIxMzEyWjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABE8bNR/DWXFtH9N5NRTL\nE9Ai2JlxtmXwjrSrDv1z68yukmMH5KQS780PVxAZ/f+f43Ox8LOHG9poPNESjEot\nIFSjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFKPNKZUQsbh3qSgI3wx8\nrT0/oG6bMAoGCCqGSM49BAMCA0cAMEQCIGkVcnD28HWv/CJ4D5MXy7Qhbpv9//SQ\nLDrQ2QcIVorFAiACR/gFA3M8oQGXXPWpTgzbf5kcOBKEc/89W/WVJlmRgg==\n-----END CERTIFICATE-----\n	2027-03-07 02:13:12+00	2026-12-08 02:13:12+00	\N	\N	\N	o80plRCxuHepKAjfDHytPT-gbps.ULYeiD5D0bWo2eAdzTe7XtRkOMs	\N	2026-12-15 02:13:12+00	2026-12-17 02:13:12+00	https://acme.example.test/why	2026-12-08 08:13:12+00
revokedcert000000000	revokedorder00000000	1afe344a1cbbeeaeb3a217a4190bf6915c6397d9	-----BEGIN CERTIFICATE-----\nMIIBazCCARGgAwIBAgIUGv40Shy77q6zohekGQv2kVxjl9kwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMTI4MDIx\nMzEyWhcNMjcwMjI2MDIxMzEyWjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nFlj5H7kRiKaA05tokgr0aYsxKS+E/Q7zyb4mN2CZZoDx1MW/8LSk0O9/EULoIyjc\nG81/3fZ5nw46vNAb5SDhzqNHMEUwIgYDVR0RAQH/BBgwFoIUcmV2b2tlZC5leGFt\ncGxlLnRlc3QwHwYDVR0jBBgwFoAUo80plRCxuHepKAjfDHytPT+gbpswCgYIKoZI\nzj0EAwIDSAAwRQIgOJuvq/5u0n49Z2OybTPItv67/pi0Aj8Jaw3l+wmsKRYCIQCS\nAKozeXurJp+hLVUbVQSMdL4Koo0VZtX+2I2P7QAI/A==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBdzCCAR6gAwIBAgIUeWA5bRRDEvmpt3jyWSa5xSE+ulIwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDIx\nMzEyWhcNMzYxMjA1MDIxMzEyWjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABE8bNR/DWXFtH9N5NRTL\nE9Ai2JlxtmXwjrSrDv1z68yukmMH5KQS780PVxAZ/f+f43Ox8LOHG9poPNESjEot\nIFSjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFKPNKZUQsbh3qSgI3wx8\nrT0/oG6bMAoGCCqGSM49BAMCA0cAMEQCIGkVcnD28HWv/CJ4D5MXy7Qhbpv9//SQ\nLDrQ2QcIVorFAiACR/gFA3M8oQGXXPWpTgzbf5kcOBKEc/89W/WVJlmRgg==\n-----END CERTIFICATE-----\n	2027-02-26 02:13:12+00	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	4	2026-12-08 02:13:12+00	o80plRCxuHepKAjfDHytPT-gbps.Gv40Shy77q6zohekGQv2kVxjl9k	\N	\N	\N	\N	\N
\.


--
-- Data for Name: challenges; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.challenges (id, authz_id, type, token, status, validated, error, validation_records, tries) FROM stdin;
pendingorderchall0	pendingorderauthz0	http-01	token-pendingorder-0	pending	\N	null	[]	0
readyorder00chall0	readyorder00authz0	http-01	token-readyorder00-0	valid	2026-12-08 02:13:12+00	null	[{"url": "http://ready.example.test/.well-known/acme-challenge/t", "hostname": "ready.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
processingorchall0	processingorauthz0	http-01	token-processingor-0	valid	2026-12-08 02:13:12+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
processingorchall1	processingorauthz1	http-01	token-processingor-1	valid	2026-12-08 02:13:12+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
invalidorderchall0	invalidorderauthz0	http-01	token-invalidorder-0	invalid	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "not the key authorization", "status": 403}	[{"url": "http://*.team.example.test/.well-known/acme-challenge/t", "hostname": "*.team.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
firstorder00chall0	firstorder00authz0	http-01	token-firstorder00-0	valid	2026-12-08 02:13:12+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
firstorder00chall1	firstorder00authz1	http-01	token-firstorder00-1	valid	2026-12-08 02:13:12+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
secondorder0chall0	secondorder0authz0	http-01	token-secondorder0-0	valid	2026-12-08 02:13:12+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
secondorder0chall1	secondorder0authz1	http-01	token-secondorder0-1	valid	2026-12-08 02:13:12+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
revokedorderchall0	revokedorderauthz0	http-01	token-revokedorder-0	valid	2026-12-08 02:13:12+00	null	[{"url": "http://revoked.example.test/.well-known/acme-challenge/t", "hostname": "revoked.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
\.


--
-- Data for Name: dns_records; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.dns_records (id, order_id, zone, fqdn, value, created, state, owner_kind, run, written, served, attempts, error) FROM stdin;
1	processingorder00000	example.test	_acme-challenge.upgrade.example.test	dGhlLXR4dC12YWx1ZS1vZi10aGUtZnJvemVuLXNldA	2026-12-08 02:13:13.659859+00	served	order	run0	2026-12-08 02:13:12+00	2026-12-08 02:13:12+00	0	\N
\.


--
-- Data for Name: eab_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.eab_keys (kid, name, hmac_key, allow, wildcards, sources, requester_in_dns, orders_per_hour, created, revoked, profiles) FROM stdin;
team-kid	team	ZnJvemVuLWVhYi1obWFjLWtleS1vZi0zMi1ieXRlcyE	["*.team.example.test"]	t	["10.0.0.0/8"]	f	30	2026-11-08 02:13:12+00	\N	[]
old-kid	old	ZnJvemVuLWVhYi1obWFjLWtleS1vZi0zMi1ieXRlcyE	["old.example.test"]	f	[]	t	\N	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	["shortlived"]
\.


--
-- Data for Name: issued_sets; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.issued_sets (set_key, issued) FROM stdin;
sha256:c26799d7a859e899b36d21a7990e38b0a7ab72cc	2026-12-07 02:13:12+00
\.


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.jobs (id, kind, subject_id, run_at, lease_until, attempts, generation, last_error, created, owner) FROM stdin;
1	order	processingorder00000	2026-12-15 02:13:12+00	\N	2	3	upstream: connection refused	2026-11-08 02:13:12+00	\N
2	validate	pendingorderchall0	2026-12-15 02:13:12+00	\N	0	0	\N	2026-12-08 02:13:12+00	\N
\.


--
-- Data for Name: nonces; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.nonces (value, expires) FROM stdin;
frozen-nonce-fresh	2026-12-15 02:13:12+00
frozen-nonce-stale	2026-11-08 02:13:12+00
\.


--
-- Data for Name: notifications; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.notifications (id, event, subject, period, channel, payload, created, sent, error) FROM stdin;
1	expiring	secondcert0000000000	2026-12-08	webhook	{"title": "expiring", "text": "renew it"}	2026-12-08 02:13:12+00	2026-12-08 02:13:12+00	\N
2	order_failed	invalidorder00000000	once	smtp	{"title": "failed", "text": "an order failed"}	2026-12-08 02:13:12+00	\N	smtp: connection refused
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.orders (id, account_id, status, expires, identifiers, not_before, not_after, error, csr, created, updated, requester, budget, profile, replaces, renewal) FROM stdin;
pendingorder000000000	frozenclient00000000	pending	2026-12-15 02:13:12+00	["pending.example.test"]	\N	\N	\N	\N	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	\N	\N	\N	\N	f
readyorder0000000000	frozenclient00000000	ready	2026-12-15 02:13:12+00	["ready.example.test"]	\N	\N	\N	\N	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	10.1.2.3	\N	\N	\N	f
processingorder00000	frozenclient00000000	processing	2026-12-15 02:13:12+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000433d373da103b803d4e7008d36c1422c71703e46178bb8c81347653e3e2188731dac87807336dd00f99ab4b80ebe6b50e90423a81a536c3475f9d6d97158741f1a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220448c5040d1bc7d2da693eb2bd1e4f3acf2501b152605bafaa94e5dc4030823c40220435784d5b56f6353f6d90c853e81f6765a341f236ef1f9e00873772934f57ef9	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	\N	reserved	\N	\N	f
invalidorder00000000	teamaccount0000000000	invalid	2026-12-15 02:13:12+00	["*.team.example.test"]	\N	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "wrong", "status": 403}	\N	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	\N	\N	\N	\N	f
firstorder0000000000	frozenclient00000000	valid	2026-12-15 02:13:12+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000433d373da103b803d4e7008d36c1422c71703e46178bb8c81347653e3e2188731dac87807336dd00f99ab4b80ebe6b50e90423a81a536c3475f9d6d97158741f1a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220448c5040d1bc7d2da693eb2bd1e4f3acf2501b152605bafaa94e5dc4030823c40220435784d5b56f6353f6d90c853e81f6765a341f236ef1f9e00873772934f57ef9	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	\N	settled	\N	\N	f
secondorder000000000	frozenclient00000000	valid	2026-12-15 02:13:12+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000433d373da103b803d4e7008d36c1422c71703e46178bb8c81347653e3e2188731dac87807336dd00f99ab4b80ebe6b50e90423a81a536c3475f9d6d97158741f1a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220448c5040d1bc7d2da693eb2bd1e4f3acf2501b152605bafaa94e5dc4030823c40220435784d5b56f6353f6d90c853e81f6765a341f236ef1f9e00873772934f57ef9	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	\N	settled	default	o80plRCxuHepKAjfDHytPT-gbps.Yof1c21a0eED5c66NlJVw23qut4	f
revokedorder00000000	frozenclient00000000	valid	2026-12-15 02:13:12+00	["revoked.example.test"]	\N	\N	\N	\\x308201063081ae02010030003059301306072a8648ce3d020106082a8648ce3d0301070342000433d373da103b803d4e7008d36c1422c71703e46178bb8c81347653e3e2188731dac87807336dd00f99ab4b80ebe6b50e90423a81a536c3475f9d6d97158741f1a04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d04030203470030440220448c5040d1bc7d2da693eb2bd1e4f3acf2501b152605bafaa94e5dc4030823c40220435784d5b56f6353f6d90c853e81f6765a341f236ef1f9e00873772934f57ef9	2026-11-08 02:13:12+00	2026-12-08 02:13:12+00	\N	\N	\N	\N	f
\.


--
-- Data for Name: upstream_accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_accounts (directory_url, key_pem, key_encrypted, account_url, created) FROM stdin;
https://acme.example.test/directory	-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIZydIgOWyijyr4Yf\n/+ILGuSjnEjGHH6yinXuFmDUkjChRANCAATD/gcuylyaizobhgNfMkvsuEX9721E\noqdsAcd2KpnXG3yEo+s73HSct7N29ZHBB/hbGtZGJB7SIVhwAcRLE2v5\n-----END PRIVATE KEY-----\n	f	https://acme.example.test/acct/1	2026-11-08 02:13:12+00
\.


--
-- Data for Name: upstream_orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_orders (id, owner_kind, owner_id, names, profile, replaces, url, stage, status, challenges, error, stage_since, created, updated) FROM stdin;
1	order	processingorder00000	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	https://acme.example.test/order/2	authorize	pending	[{"authz": "https://acme.example.test/authz/1", "url": "https://acme.example.test/chall/1"}]	\N	2026-12-08 02:13:12+00	2026-12-08 02:13:12+00	2026-12-08 02:13:12+00
2	order	secondorder000000000	["upgrade.example.test", "www.upgrade.example.test"]	default	o80plRCxuHepKAjfDHytPT-gbps.Yof1c21a0eED5c66NlJVw23qut4	https://acme.example.test/order/3	done	valid	[]	\N	2026-12-08 02:13:12+00	2026-12-08 02:13:12+00	2026-12-08 02:13:12+00
\.


--
-- Data for Name: upstream_pauses; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_pauses (name, unpause_url, since) FROM stdin;
paused.example.test	https://acme.example.test/unpause	2026-12-08 02:13:12+00
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
-- Name: notifications_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.notifications_id_seq', 2, true);


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
-- Name: budget_buckets budget_buckets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_buckets
    ADD CONSTRAINT budget_buckets_pkey PRIMARY KEY ("limit", key);


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
-- Name: eab_keys eab_keys_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.eab_keys
    ADD CONSTRAINT eab_keys_name_key UNIQUE (name);


--
-- Name: eab_keys eab_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.eab_keys
    ADD CONSTRAINT eab_keys_pkey PRIMARY KEY (kid);


--
-- Name: issued_sets issued_sets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.issued_sets
    ADD CONSTRAINT issued_sets_pkey PRIMARY KEY (set_key);


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
-- Name: notifications notifications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);


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
-- Name: upstream_pauses upstream_pauses_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_pauses
    ADD CONSTRAINT upstream_pauses_pkey PRIMARY KEY (name);


--
-- Name: ix_accounts_eab_kid; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_accounts_eab_kid ON public.accounts USING btree (eab_kid);


--
-- Name: ix_authzs_order_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_authzs_order_id ON public.authzs USING btree (order_id);


--
-- Name: ix_authzs_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_authzs_status ON public.authzs USING btree (status);


--
-- Name: ix_certificates_ari_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_certificates_ari_id ON public.certificates USING btree (ari_id);


--
-- Name: ix_certificates_not_after; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_certificates_not_after ON public.certificates USING btree (not_after);


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
-- Name: ix_issued_sets_issued; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_issued_sets_issued ON public.issued_sets USING btree (issued);


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
-- Name: ix_notifications_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_notifications_created ON public.notifications USING btree (created);


--
-- Name: ix_notifications_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_notifications_key ON public.notifications USING btree (event, subject, period, channel);


--
-- Name: ix_orders_account_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_account_id ON public.orders USING btree (account_id);


--
-- Name: ix_orders_budget; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_budget ON public.orders USING btree (budget);


--
-- Name: ix_orders_expires; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_expires ON public.orders USING btree (expires);


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
-- Name: accounts fk_accounts_eab_kid_eab_keys; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT fk_accounts_eab_kid_eab_keys FOREIGN KEY (eab_kid) REFERENCES public.eab_keys(kid);


--
-- Name: orders orders_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);


--
-- PostgreSQL database dump complete
--

\unrestrict 9OW3yEak5daDicEOUVfT8CYK3sn7OREHixcKXIRWodFGhkaDLfnHg8gKp4r497q


// How the gateway calls the services, one client per design:
// - naive: node:http with no agent, so every call opens a new TCP connection
//   (Connection: close), as the published design did;
// - fair: one undici Pool of keep-alive connections per service.
// Both answer request(service, method, path, body) with { status, data }.
'use strict';

const http = require('node:http');
const { Pool } = require('undici');
const config = require('./config');

function parse(text) {
  return text.length > 0 ? JSON.parse(text) : null;
}

function jsonHeaders(payload) {
  return payload === null ? {}
    : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
}

function naiveClient() {
  const request = (service, method, path, body) => new Promise((resolve, reject) => {
    const payload = body === undefined ? null : JSON.stringify(body);
    const options = { method, agent: false, headers: jsonHeaders(payload) };
    const req = http.request(config.serviceUrl(service) + path, options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, data: parse(Buffer.concat(chunks).toString()) }));
    });
    req.on('error', reject);
    req.end(payload === null ? undefined : payload);
  });
  return { request };
}

function fairClient() {
  const connections = Number(process.env.POOL_CONNECTIONS || 32);
  const pools = Object.fromEntries(
    config.SERVICES.map((name) => [name, new Pool(config.serviceUrl(name), { connections })]));
  const request = async (service, method, path, body) => {
    const payload = body === undefined ? null : JSON.stringify(body);
    const res = await pools[service].request({ method, path, headers: jsonHeaders(payload), body: payload });
    return { status: res.statusCode, data: parse(await res.body.text()) };
  };
  return { request };
}

// GET that expects 200 (or 404, answered as null); anything else is an error.
async function getJson(client, service, path) {
  const { status, data } = await client.request(service, 'GET', path);
  if (status === 404) return null;
  if (status !== 200) throw new Error(`${service} GET ${path}: ${status}`);
  return data;
}

function createClient(mode) {
  return mode === 'fair' ? fairClient() : naiveClient();
}

module.exports = { createClient, getJson };

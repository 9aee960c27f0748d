/**
 * Which PostgreSQL failures a waiting writer sits out (isTransientOutage) and which end a session
 * (isConnectionFailure). A waiting writer that took a wrong host or password for an outage waited its whole wait
 * before saying so.
 */
import { describe, expect, it } from "vitest";
import { isConnectionFailure, isTransientOutage, pgCodeOf } from "../../src/backend/postgres-errors.js";
import { StorageError } from "../../src/errors.js";

function withCode(code: string, message = "failed"): Error {
  return Object.assign(new Error(message), { code });
}

describe("isTransientOutage", () => {
  const transient: [string, unknown][] = [
    ["connection refused", withCode("ECONNREFUSED")],
    ["connection reset", withCode("ECONNRESET")],
    ["broken pipe", withCode("EPIPE")],
    ["socket timeout", withCode("ETIMEDOUT")],
    ["host unreachable", withCode("EHOSTUNREACH")],
    ["network unreachable", withCode("ENETUNREACH")],
    ["temporary name lookup failure", withCode("EAI_AGAIN")],
    ["server closed the connection (08006)", withCode("08006")],
    ["server cannot establish the connection (08001)", withCode("08001")],
    ["administrator shutdown (57P01)", withCode("57P01")],
    ["crash shutdown (57P02)", withCode("57P02")],
    ["server starting up (57P03)", withCode("57P03")],
    ["too many connections (53300)", withCode("53300")],
    ["driver: connection lost", new Error("Connection terminated unexpectedly")],
    ["driver: connect timeout", new Error("Connection terminated due to connection timeout")],
    ["driver: query timeout", new Error("Query read timeout")],
    ["every address of a host refused", new AggregateError([withCode("ECONNREFUSED"), withCode("ECONNREFUSED")], "x")],
  ];
  const final: [string, unknown][] = [
    ["unknown host", withCode("ENOTFOUND")],
    ["wrong password (28P01)", withCode("28P01")],
    ["no such database (3D000)", withCode("3D000")],
    ["permission denied (42501)", withCode("42501")],
    ["missing password (driver, no code)", new Error("SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string")],
    ["this package's own error", new StorageError("backend-error", "store schema version 2 is newer than this package's")],
    ["this package's error over a lost connection", new StorageError("backend-error", "lost", { osCode: "ECONNRESET" })],
    ["a host with one unknown address", new AggregateError([withCode("ECONNREFUSED"), withCode("ENOTFOUND")], "x")],
    ["a plain error", new Error("something else")],
    ["not an error", "ECONNREFUSED"],
    ["nothing", undefined],
  ];
  it.each(transient)("waits out %s", (_name, err) => {
    expect(isTransientOutage(err)).toBe(true);
  });
  it.each(final)("reports %s at once", (_name, err) => {
    expect(isTransientOutage(err)).toBe(false);
  });
});

describe("pgCodeOf", () => {
  it("reads a SQLSTATE, not an errno name of five capitals", () => {
    expect(pgCodeOf(withCode("08006"))).toBe("08006");
    expect(pgCodeOf(withCode("57P01"))).toBe("57P01");
    expect(pgCodeOf(withCode("EPIPE"))).toBeUndefined();
    expect(pgCodeOf(withCode("ECONNRESET"))).toBeUndefined();
  });

  it("so a broken pipe ends the session like any socket failure", () => {
    expect(isConnectionFailure(withCode("EPIPE"))).toBe(true);
    expect(isConnectionFailure(withCode("42P01"))).toBe(false);
  });
});

/**
 * Bumped on any change to the wire format. `hello`, `fetchGenerator`, `refuse`, `error`
 * and `bye` keep their shape across versions so a mismatch is always reported cleanly.
 */
export const PROTOCOL_VERSION = 3;

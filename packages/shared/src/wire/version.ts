/**
 * Bumped on any change to the wire format. `hello` and `fetchGenerator` are read version first,
 * and `refuse`, `error` and `bye` keep their shape across versions, so that a mismatch is always
 * reported cleanly. 4: relays (hello.role, round.seeds for several slots, sums, leaves). 5: frames through shared
 * memory (hello.capabilities.sharedMemory, welcome.shared, sharedAnswer, sharedFrame). 6: frames in shared memory
 * announced by doorbells in the region (link/sharedRegion.ts), no longer by sharedFrame on the socket. 7: a round
 * in the region announced before its body is written, the body's progress published beside the doorbell.
 */
export const PROTOCOL_VERSION = 7;

// event-loop-block-detector: names what blocks a Node.js event loop, while it blocks.
export { startBlockDetector, BLOCK_CHANNEL, WATCHER_THREAD_NAME } from './detector.js';
export type { BlockDetector, BlockDetectorOptions, BlockDetectorStats } from './detector.js';
export type { Block, Frame, RequestInfo } from './block.js';
export { currentRequest, requestTracker, servingRequest, trackRequests } from './request.js';
export { SourceFrames } from './frames.js';
export type { RawFrame } from './frames.js';

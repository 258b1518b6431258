export { createLeadership, type Leadership, type LeadershipOptions } from './leader.js';
export { createRunFeed, type RunFeed, type RunFeedOptions } from './run-feed.js';

"""RQ side of shoprelay: queues, jobs, the cron schedule and one adapter per platform."""

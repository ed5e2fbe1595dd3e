"""Marketing automation: journeys as versioned data, enrolment by triggers, durable step
execution by workers, an outbox with guardrails for every message, experiments and ROI."""

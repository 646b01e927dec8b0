"""Teaching-file self-assessment, pure: answer scoring, quiz draws, spaced repetition, trainee
statistics (issue #14).
"""

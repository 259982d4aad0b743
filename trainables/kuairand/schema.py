"""KuaiRand's files, columns and objectives, and the features the MP stage feeds its
model (Gao et al., CIKM 2022; the loader is :mod:`trainables.kuairand.loader`)."""
from __future__ import annotations

OBJECTIVES = {"click": "is_click", "long_view": "long_view", "like": "is_like",
              "follow": "is_follow", "comment": "is_comment", "forward": "is_forward",
              "profile_enter": "is_profile_enter"}
LOG_PATTERN = "log_*.csv"
USER_PATTERN = "user_features*.csv"
VIDEO_PATTERN = "video_features_basic*.csv"
LOG_COLUMNS = ["user_id", "video_id", "date", "hourmin", "time_ms", "tab",
               *OBJECTIVES.values()]
LOG_OPTIONAL = ["duration_ms"]
ONEHOT = [f"onehot_feat{i}" for i in range(18)]
USER_COLUMNS = ["user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer",
                "is_video_author", "follow_user_num", "follow_user_num_range",
                "fans_user_num", "fans_user_num_range", "friend_user_num",
                "friend_user_num_range", "register_days", "register_days_range", *ONEHOT]
VIDEO_COLUMNS = ["video_id", "author_id", "video_type", "upload_dt", "upload_type",
                 "video_duration", "music_id", "music_type", "tag"]

# What the MP stage feeds its model, and what the ME dataset keeps as feat_<name>.
ID_FEATURES = ["user_id", "video_id", "author_id", "music_id"]
CATEGORICAL_FEATURES = [
    "hour", "tab", "user_active_degree", "is_lowactive_period", "is_live_streamer",
    "is_video_author", "follow_user_num_range", "fans_user_num_range",
    "friend_user_num_range", "register_days_range", *ONEHOT, "video_type", "upload_type",
    "music_type", "tag", "tag_first", "duration_bucket", "video_age_bucket"]
NUMERIC_FEATURES = ["log_follow_user_num", "log_fans_user_num", "log_friend_user_num",
                    "log_register_days", "log_duration_s"]
ME_FEATURES = ["hour", "tab", "user_active_degree", "register_days_range",
               "follow_user_num_range", "fans_user_num_range", "friend_user_num_range",
               "is_video_author"]

DURATION_EDGES_S = [7, 15, 30, 60, 120, 300]      # bucket 0: unknown/0 s, then 1..7
VIDEO_AGE_EDGES_D = [1, 2, 4, 8, 15, 31]           # bucket 0: unknown/negative, then 1..7
UNKNOWN = ("error", "drop", "keep")
CHUNK_ROWS = 1_000_000

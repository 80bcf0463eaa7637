import type { Study__Output } from '@fedlhs/proto';
import { describe, expect, it } from 'vitest';
import { AGENT_CAPABILITIES, applyStudyProgress } from './control-session.js';

const study: Study__Output = {
  studyId: 'study-1', manifestJson: '{"rounds":3}', manifestSha256: 'ab'.repeat(32), state: 'STUDY_STATE_RUNNING', lastCommittedRound: 0, parametersJson: '',
  seriesTemplateJson: '', seriesTemplateSha256: '',
};

describe('StudyProgress on the agent', () => {
  it('advertises the study-progress capability', () => {
    expect(AGENT_CAPABILITIES).toContain('study-progress');
  });

  it('takes state, round and new parameters, keeping the manifest', () => {
    const params = '{"normalization":{"method":"zscore","features":[]}}';
    const next = applyStudyProgress(study, { studyId: 'study-1', state: 'STUDY_STATE_RUNNING', lastCommittedRound: 1, parametersJson: params });
    expect(next).toEqual({ ...study, lastCommittedRound: 1, parametersJson: params });
  });

  it('reads empty parameters as unchanged, not as none', () => {
    const withParams = { ...study, parametersJson: '{"a":1}' };
    expect(applyStudyProgress(withParams, { studyId: 'study-1', state: 'STUDY_STATE_COMPLETED', lastCommittedRound: 3, parametersJson: '' })).toEqual({
      ...withParams, state: 'STUDY_STATE_COMPLETED', lastCommittedRound: 3,
    });
  });
});

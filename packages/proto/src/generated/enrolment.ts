import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AgentInfo as _fedlhs_v1_AgentInfo, AgentInfo__Output as _fedlhs_v1_AgentInfo__Output } from './fedlhs/v1/AgentInfo.js';
import type { CalibrationBin as _fedlhs_v1_CalibrationBin, CalibrationBin__Output as _fedlhs_v1_CalibrationBin__Output } from './fedlhs/v1/CalibrationBin.js';
import type { EnrolRequest as _fedlhs_v1_EnrolRequest, EnrolRequest__Output as _fedlhs_v1_EnrolRequest__Output } from './fedlhs/v1/EnrolRequest.js';
import type { EnrolResponse as _fedlhs_v1_EnrolResponse, EnrolResponse__Output as _fedlhs_v1_EnrolResponse__Output } from './fedlhs/v1/EnrolResponse.js';
import type { EnrolmentClient as _fedlhs_v1_EnrolmentClient, EnrolmentDefinition as _fedlhs_v1_EnrolmentDefinition } from './fedlhs/v1/Enrolment.js';
import type { Metrics as _fedlhs_v1_Metrics, Metrics__Output as _fedlhs_v1_Metrics__Output } from './fedlhs/v1/Metrics.js';
import type { Performance as _fedlhs_v1_Performance, Performance__Output as _fedlhs_v1_Performance__Output } from './fedlhs/v1/Performance.js';
import type { TensorBundleHeader as _fedlhs_v1_TensorBundleHeader, TensorBundleHeader__Output as _fedlhs_v1_TensorBundleHeader__Output } from './fedlhs/v1/TensorBundleHeader.js';
import type { TensorSpec as _fedlhs_v1_TensorSpec, TensorSpec__Output as _fedlhs_v1_TensorSpec__Output } from './fedlhs/v1/TensorSpec.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  fedlhs: {
    v1: {
      AgentInfo: MessageTypeDefinition<_fedlhs_v1_AgentInfo, _fedlhs_v1_AgentInfo__Output>
      CalibrationBin: MessageTypeDefinition<_fedlhs_v1_CalibrationBin, _fedlhs_v1_CalibrationBin__Output>
      DType: EnumTypeDefinition
      EnrolRequest: MessageTypeDefinition<_fedlhs_v1_EnrolRequest, _fedlhs_v1_EnrolRequest__Output>
      EnrolResponse: MessageTypeDefinition<_fedlhs_v1_EnrolResponse, _fedlhs_v1_EnrolResponse__Output>
      Enrolment: SubtypeConstructor<typeof grpc.Client, _fedlhs_v1_EnrolmentClient> & { service: _fedlhs_v1_EnrolmentDefinition }
      Metrics: MessageTypeDefinition<_fedlhs_v1_Metrics, _fedlhs_v1_Metrics__Output>
      Performance: MessageTypeDefinition<_fedlhs_v1_Performance, _fedlhs_v1_Performance__Output>
      TensorBundleHeader: MessageTypeDefinition<_fedlhs_v1_TensorBundleHeader, _fedlhs_v1_TensorBundleHeader__Output>
      TensorSpec: MessageTypeDefinition<_fedlhs_v1_TensorSpec, _fedlhs_v1_TensorSpec__Output>
    }
  }
}

